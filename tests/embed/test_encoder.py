"""One encoder API: `prodlens.load_encoder(...)` and `encode(images=, texts=, videos=, domain=)` agree with
`embed_catalog` on the same inputs, for the zero-shot encoder and for a trained checkpoint alike."""
import numpy as np
import pytest
from PIL import Image

import prodlens
from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog
from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError, RecordError


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = generate_demo_catalog(tmp_path_factory.mktemp("enc") / "cat", n_products=4, videos_per_product=1,
                                 lives_per_product=1, progress=False)
    return load_folder(root)


def _check_encode_matches_catalog(encoder, catalog):
    emb = encoder.embed_catalog(catalog, progress=False)
    row = {s: v for s, v in zip(emb.sample_ids, emb.vectors)}
    pages = catalog.by_domain("page")
    got = encoder.encode(images=[catalog.path(s.images[0]) for s in pages],
                         texts=[catalog.sample_text(s) for s in pages], domain="page", titles=[s.title for s in pages])
    assert got.shape == (len(pages), emb.dim) and got.dtype == np.float32
    for vec, s in zip(got, pages):
        assert np.abs(vec - row[s.sample_id]).max() < 1e-4
    video = catalog.by_domain("video")[0]
    clip = encoder.encode(videos=[catalog.path(video.video)], texts=[catalog.sample_text(video)], domain="video")
    assert np.abs(clip[0] - row[video.sample_id]).max() < 1e-4
    return emb


def test_zero_shot_encoder(catalog, embedder):
    encoder = prodlens.load_encoder(frames=4, batch_size=16)
    _check_encode_matches_catalog(encoder, catalog)
    photo = Image.open(catalog.path(catalog.by_domain("page")[0].images[0]))
    mixed = encoder.encode(images=[photo, None], texts=[None, "a red lipstick"], domain="live")
    assert mixed.shape[0] == 2 and np.allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)
    with pytest.raises(RecordError, match="item 1: nothing to embed"):
        encoder.encode(images=[photo, None], domain="live")
    with pytest.raises(ValueError, match="one entry per item"):
        encoder.encode(images=[photo], texts=["a", "b"])
    with pytest.raises(ProdlensError, match="encoder spec"):
        prodlens.load_encoder("not-a-spec")


def test_trained_checkpoint_is_the_same_kind_of_object(catalog, tmp_path, embedder):
    from prodlens.model import load_run_config
    from prodlens.train import Trainer

    run = load_run_config("tiny", {"train": {"epochs": 2, "batch_products": 4, "samples_per_product": 1}})
    trainer = Trainer(run, tmp_path / "run", FeatureCache(tmp_path / "cache"), progress=False)
    trainer.fit(catalog)
    encoder = prodlens.load_encoder(tmp_path / "run", cache=FeatureCache(tmp_path / "cache"))
    assert isinstance(encoder, prodlens.ProductEncoder) and encoder.name.startswith("trained[")
    emb = _check_encode_matches_catalog(encoder, catalog)
    assert emb.dim == 32 + 512  # the network's embedding and the read-text block
