import numpy as np

from prodlens.catalog import load_folder, validate_catalog
from prodlens.demo import generate_demo_catalog, make_products
from prodlens.media import sample_frames


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
