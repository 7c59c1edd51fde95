import numpy as np

from prodlens.catalog import load_folder, validate_catalog
from prodlens.demo import generate_demo_catalog, make_products
from prodlens.media import extract_audio, sample_frames


def test_demo_catalogue_is_valid_tri_domain_and_deterministic(tmp_path):
    a = generate_demo_catalog(tmp_path / "a", n_products=4, videos_per_product=1, lives_per_product=1, progress=False)
    b = generate_demo_catalog(tmp_path / "b", n_products=4, videos_per_product=1, lives_per_product=1, progress=False)
    cat = load_folder(a)
    assert cat.summary()["page"] == 4 and cat.summary()["video"] == 4 and cat.summary()["live"] == 4
    assert len(validate_catalog(cat, progress=False)) == 0
    pid = sorted(cat.products)[0]
    assert (a / "page" / pid / "main.jpg").read_bytes() == (b / "page" / pid / "main.jpg").read_bytes()
    live = sample_frames(a / "live" / pid / "l0.mp4", 4)
    assert live[0].size == (224, 384)  # portrait live clips
    frames = [np.asarray(f, dtype=np.float32) for f in sample_frames(a / "video" / pid / "v0.mp4", 4)]
    assert np.abs(frames[0] - frames[-1]).mean() > 5  # the camera moves


def test_products_share_looks():
    specs = make_products(40)
    assert len({s.product_id for s in specs}) == 40
    assert len({s.colour for s in specs}) < 40 and len({s.brand for s in specs}) < 40


def test_spoken_attacks_change_only_the_attacked_held_out_clips(tmp_path):
    import shutil

    from tests.helpers import require

    require(shutil.which("espeak-ng") is not None, "espeak-ng", "apt-get install espeak-ng")
    kwargs = dict(n_products=4, videos_per_product=2, lives_per_product=2, test_clip=1, speech=True,
                  speech_domains=("video", "live"), progress=False)
    clean = generate_demo_catalog(tmp_path / "clean", **kwargs)
    attacked = generate_demo_catalog(tmp_path / "attacked", attack_every=2, **kwargs)
    assert not (clean / "attacks.csv").exists()
    rows = [line.split(",") for line in (attacked / "attacks.csv").read_text().splitlines()[1:]]
    assert len(rows) == 4 and {r[0].split("/")[0] for r in rows} == {"video", "live"}  # half of 8, both domains
    products = load_folder(attacked).products
    for sample_id, target, sentence in rows:
        assert sample_id.endswith("1") and target != sample_id.split("/")[1]  # a held-out clip, another product
        assert products[target].title.split()[0].lower() in sentence.lower()  # it names that product's brand
    hit = {r[0] for r in rows}
    for clip in sorted(clean.glob("*/*/*.mp4")):
        rel = clip.relative_to(clean)
        a, b = extract_audio(clip), extract_audio(attacked / rel)
        same = a.shape == b.shape and np.allclose(a, b, atol=1e-3)  # what is said, not the container's bytes
        assert same != (str(rel.with_suffix("")) in hit), rel
