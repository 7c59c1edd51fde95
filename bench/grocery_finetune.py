"""Grocery Store val, in-store photo → product page (L2P): what each training method reaches, and in how long.

Every method trains on Grocery `train` with the packaged default config plus its changes, validates on `val`
(the best checkpoint by validation is reported: the test split is withheld, so val both selects and reports), and
is timed wall-clock on this machine, start-up and caching included. The baseline, in the same run, is the previous
default: a head over frozen, cached EfficientNet-Lite0 features. Zero-shot is the untrained encoders.

    python bench/grocery_finetune.py [--methods cached,partial-2,default] [--out bench-results/grocery-finetune]
        [--fresh-cache]

With `--fresh-cache` every method starts from an empty feature cache (its time then includes encoding the
catalogue); by default the pooled zero-shot features are shared between methods (filled once, not timed) and each
method still builds its own backbone activations (they depend on the split depth, the views and the resolution).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prodlens import api, atomic, load_catalog, load_encoder
from prodlens.embed import FeatureCache
from prodlens.evaluate import evaluate_embeddings

from shared_data import SHARED

METHODS: dict[str, tuple[str, dict]] = {
    "cached": ("head on frozen cached features (previous default)",
               {"train": {"backbone": "cached", "augment_views": 2, "epochs": 30}}),
    "partial-2": ("partial fine-tune, top 2 blocks, 4 views, 30 epochs",
                  {"train": {"backbone": "partial", "trainable_blocks": 2, "augment_views": 4, "epochs": 30}}),
    "partial-5": ("partial fine-tune, top 5 blocks, 4 views, 15 epochs",
                  {"train": {"backbone": "partial", "trainable_blocks": 5, "augment_views": 4, "epochs": 15}}),
    "partial-8": ("partial fine-tune, top 8 blocks, 4 views, 15 epochs",
                  {"train": {"backbone": "partial", "trainable_blocks": 8, "augment_views": 4, "epochs": 15}}),
    "partial-5-288": ("partial fine-tune, top 5 blocks, 4 views, 15 epochs, 288 px",
                      {"model": {"image_size": 288},
                       "train": {"backbone": "partial", "trainable_blocks": 5, "augment_views": 4, "epochs": 15}}),
    "default": ("default configuration", {}),
}


def evaluate(root: Path, run_dir: Path, cache: FeatureCache, flip: bool) -> dict:
    """L2P metrics of the run's best checkpoint on val, with or without test-time flip averaging."""
    encoder = load_encoder(run_dir, cache=cache, flip_tta=flip)
    embeddings = encoder.embed_catalog(load_catalog("grocery", root, "val"), progress=False)
    return evaluate_embeddings(embeddings, split="val").metrics()["live2page"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=SHARED / "grocery-store")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", type=Path, default=Path("bench-results/grocery-finetune"))
    ap.add_argument("--fresh-cache", action="store_true")
    args = ap.parse_args()
    if not (args.root / "classes.csv").exists():
        raise SystemExit(f"{args.root} is not the Grocery Store dataset: clone prodlens beside ../shared")
    console = Console()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    shared_cache = FeatureCache(args.out / "cache")

    console.print("zero-shot baseline (fills the shared feature cache; not timed)...")
    zero = api.evaluate_catalog("grocery", args.root, split="val", cache=shared_cache, progress=True)
    rows = [("zero-shot (no training)", zero.metrics()["live2page"], None, None, None)]
    for name in names:
        label, overrides = METHODS[name]
        cache = FeatureCache(args.out / f"cache-{name}") if args.fresh_cache else shared_cache
        console.rule(label)
        start = time.time()
        result = api.train_catalog("grocery", args.root, args.out / name, split="train", val_split="val",
                                   overrides=overrides, cache=cache, progress=True)
        minutes = (time.time() - start) / 60
        plain, flipped = (evaluate(args.root, args.out / name, cache, flip) for flip in (False, True))
        rows.append((label, plain, flipped, minutes, result.best["step"]))
        atomic.write_json(args.out / f"{name}.json", {"method": label, "overrides": overrides, "minutes": minutes,
                                                     "best_step": result.best["step"], "steps": result.step,
                                                     "live2page": plain, "live2page_flip_tta": flipped})
    baseline = next((r for r in rows if r[0] == METHODS["cached"][0]), None)
    table = Table(title="Grocery val, in-store photo → product page (baseline: head on frozen features)",
                  title_justify="left")
    columns = ("method", "L2P R@1", "R@5", "R@10", "mAP", "R@1, flip TTA", "R@1 vs baseline", "best step",
               "wall minutes")
    for col in columns:
        table.add_column(col, justify="left" if col == "method" else "right")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for label, m, flipped, minutes, step in rows:
        ratio = f"{m['R@1'] / baseline[1]['R@1']:.3f}x" if baseline else "-"
        cells = [label, f"{m['R@1']:.3f}", f"{m['R@5']:.3f}", f"{m['R@10']:.3f}", f"{m['mAP']:.3f}",
                 "-" if flipped is None else f"{flipped['R@1']:.3f}", ratio,
                 "-" if step is None else str(step), "-" if minutes is None else f"{minutes:.1f}"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    atomic.write_text(args.out / "table.md", "\n".join(lines) + "\n")
    console.print(f"table written to {args.out / 'table.md'}")


if __name__ == "__main__":
    main()
