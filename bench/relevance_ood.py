"""Does one relevance score tell a product the catalogue has from one it has not? Queries against the 81 Grocery
pages (default zero-shot index): 100 Grocery *val* photos (the fitted photo model never saw them) and 30 clips of
products that are not groceries at all (the built-in generated demo catalogue's live clips) — the top hit's
relevance of each, and what a `min_score` keeps of each group.

    python bench/relevance_ood.py [--root ../shared/data/grocery-store]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None)
    args = ap.parse_args()
    from prodlens import api
    from prodlens.cache import open_cache
    from prodlens.catalog import load_catalog, load_folder
    from prodlens.demo import generate_demo_catalog
    from prodlens.index.query import query_model

    cache = open_cache()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        grocery = load_catalog("grocery", grocery_root(args.root))
        index, _ = api.index_catalog(grocery, tmp / "index", ("page",), cache=cache, progress=False)
        model, _ = query_model(index.record, cache)
        demo = load_folder(generate_demo_catalog(tmp / "demo", n_products=30, videos_per_product=0,
                                                 lives_per_product=1, progress=False))
        clips = model.embed_catalog(demo.select(domains=["live"]), progress=False)
        outside = np.array([index.query({"q": v}, {}, "video", k=1).hits[0].score for v in clips.vectors])
        val = grocery.select(domains=["live"], split="val")
        photos = val.__class__.build(val.root, list(val.products.values()),
                                     random.Random(1).sample(val.samples, 100), name="val")
        emb = model.embed_catalog(photos, progress=False)
        found = [(index.query({"q": v}, {}, "image", k=1).hits[0], p) for v, p in zip(emb.vectors, emb.product_ids)]
    right = np.array([h.score for h, p in found if h.product_id == p])
    wrong = np.array([h.score for h, p in found if h.product_id != p])
    print(f"{'queries':<38} {'n':>4} {'median':>7} {'p90':>6} {'max':>6}")
    for name, scores in (("not in the catalogue (demo clips)", outside), ("grocery val photo, right top hit", right),
                         ("grocery val photo, wrong top hit", wrong)):
        print(f"{name:<38} {len(scores):>4} {np.median(scores):7.3f} {np.percentile(scores, 90):6.3f} "
              f"{scores.max():6.3f}")
    for t in (0.3, 0.5):
        print(f"min_score {t}: keeps {np.mean(outside >= t):.2f} of the outside queries, {np.mean(right >= t):.2f} of "
              f"the right hits, {np.mean(wrong >= t):.2f} of the wrong ones")


if __name__ == "__main__":
    main()
