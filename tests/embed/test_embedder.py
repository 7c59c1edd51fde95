"""Embedding real (generated) media with the real pretrained encoders."""
import shutil

import numpy as np
import pytest

from prodlens.catalog import Sample, load_folder
from prodlens.demo import generate_demo_catalog
from prodlens.embed import EmbedConfig, FeatureCache, ProductEmbedder


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return generate_demo_catalog(tmp_path_factory.mktemp("demo") / "cat", n_products=5, videos_per_product=1,
                                 lives_per_product=1, progress=False)


def test_embeddings_are_normalised_and_cached(demo_root, tmp_path, embedder):
    catalog = load_folder(demo_root)
    first = ProductEmbedder(embedder.config, FeatureCache(tmp_path / "cache"))
    emb = first.embed_catalog(catalog, progress=False)
    assert len(emb) == 15 and emb.dim == 1280 + 384 + 512  # visual, text, read-text blocks
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    assert first.cache.misses > 0
    second = ProductEmbedder(embedder.config, FeatureCache(tmp_path / "cache"))
    again = second.embed_catalog(catalog, progress=False)
    assert second.cache.misses == 0 and second.cache.hits > 0  # nothing re-encoded
    assert np.allclose(again.vectors, emb.vectors, atol=1e-6)
    path = emb.save(tmp_path / "emb.parquet")
    loaded = type(emb).load(path)
    assert loaded.sample_ids == emb.sample_ids and np.allclose(loaded.vectors, emb.vectors)
    assert loaded.meta["model"] == emb.meta["model"]


def test_corrupt_media_is_skipped_and_reported(demo_root, tmp_path, embedder):
    root = tmp_path / "cat"
    shutil.copytree(demo_root, root)
    pid = sorted(p.name for p in (root / "live").iterdir())[0]
    (root / "live" / pid / "l0.mp4").write_bytes(b"\x00" * 512)
    page = root / "page" / pid / "main.jpg"
    page.write_bytes(page.read_bytes()[:300])
    catalog = load_folder(root)
    catalog.samples.append(Sample("live/ghost", pid, "live", video="live/ghost.mp4"))  # a file that is not there
    emb = embedder.embed_catalog(catalog, progress=False)
    assert len(emb) == 13
    problems = {b.record: b.problem for b in emb.bad}
    assert "not a readable video" in problems[f"live/{pid}/l0"]
    assert "truncated" in problems[f"page/{pid}/main"]
    assert "media file not found: live/ghost.mp4" in problems["live/ghost"]


def test_text_only_page_without_text_is_a_bad_record(demo_root, tmp_path, embedder):
    root = tmp_path / "cat"
    shutil.copytree(demo_root, root)
    pid = sorted(p.name for p in (root / "page").iterdir())[0]
    (root / "page" / pid / "main.txt").unlink()
    (root / "products.csv").unlink()
    catalog = load_folder(root)
    catalog.products[pid] = type(catalog.products[pid])(pid)  # no title either
    text_only = embedder.with_config(page_inputs="text")
    emb = text_only.embed_catalog(catalog.select(domains=["page"]), progress=False)
    assert f"page/{pid}/main" not in emb.sample_ids
    assert any("nothing to embed" in b.problem for b in emb.bad)


def test_page_variants_change_the_vectors(demo_root, embedder):
    catalog = load_folder(demo_root).select(domains=["page"])
    fused = embedder.embed_catalog(catalog, progress=False)
    image_only = embedder.with_config(page_inputs="image").embed_catalog(catalog, progress=False)
    text_only = embedder.with_config(page_inputs="text").embed_catalog(catalog, progress=False)
    assert not np.allclose(fused.vectors, image_only.vectors)
    assert np.allclose(image_only.vectors[:, 1280:1280 + 384], 0) and np.allclose(text_only.vectors[:, :1280], 0)
    # the read-text block: what OCR read on the page, and its title only when the page's text is embedded
    read = slice(1280 + 384, None)
    assert np.abs(fused.vectors[:, read]).max() > 0 and not np.allclose(fused.vectors[:, read],
                                                                        image_only.vectors[:, read])
    unread = embedder.with_config(ocr="none").embed_catalog(catalog, progress=False)
    assert unread.dim == 1280 + 384


def test_query_embedding_matches_its_catalogue_sample(demo_root, embedder):
    catalog = load_folder(demo_root)
    emb = embedder.embed_catalog(catalog, progress=False)
    sample = catalog.by_domain("live")[0]
    query = embedder.embed_query(embedder.features.load_frames(catalog, sample), domain="live")
    row = emb.sample_ids.index(sample.sample_id)
    assert float(query @ emb.vectors[row]) > 0.999


def test_config_is_validated():
    with pytest.raises(ValueError, match="page_inputs"):
        EmbedConfig(page_inputs="smell")
    with pytest.raises(ValueError):
        EmbedConfig(visual_weight=1.5)


def test_flip_tta_embeds_an_image_and_its_mirror_alike(embedder):
    """Test-time flip averaging: a photo and its mirror image get the same features (they differ without it), and
    the averaged features are cached under their own key."""
    from PIL import Image, ImageDraw, ImageOps

    img = Image.new("RGB", (112, 112), (240, 240, 230))  # square: centre crops mirror exactly
    ImageDraw.Draw(img).rectangle((8, 20, 50, 100), fill=(200, 30, 30))  # left-heavy: the mirror differs
    mirrored = ImageOps.mirror(img)
    plain = embedder.with_config(flip_tta=False)
    tta = embedder.with_config(flip_tta=True)
    a, b = (plain.features.query_features([[x]], [""])[0].visual[0] for x in (img, mirrored))
    assert np.abs(a - b).max() > 1e-3
    a, b = (tta.features.query_features([[x]], [""])[0].visual[0] for x in (img, mirrored))
    assert np.allclose(a, b, atol=1e-4)
    assert tta.features.image_model_key == plain.features.image_model_key + "+flip"


def test_a_model_id_names_the_speech_defence_that_made_its_clip_text():
    from prodlens.embed import model_id
    from prodlens.text import Summarizer
    from prodlens.text.detector import InjectionDetector, shipped_detector

    raw = ProductEmbedder(EmbedConfig(speech="raw"), FeatureCache(None))
    assert "speech" not in raw.signature()  # raw ASR text: no rule decides it
    gated = ProductEmbedder(EmbedConfig(speech="gated"), FeatureCache(None))
    before = model_id(gated.signature())
    shipped = shipped_detector()
    retrained = InjectionDetector(shipped.weights * 0.5, shipped.bias, shipped.threshold, shipped.text_encoder,
                                  shipped.ngram_dim, version="retrained")
    gated.features.speech._summarizer = Summarizer("extractive", gated.features.cache, detector=retrained)
    assert model_id(gated.signature()) != before  # an index built before the change refuses the new vectors
