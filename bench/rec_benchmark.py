"""LEARN vs SASRec vs BSARec vs popularity on the same data, splits and harness, in one run (popularity: baseline).

For each model: full-ranking R@10/N@10/R@20/N@20 on leave-one-out, on long-tail targets (bottom 80% of items by
training frequency), on head targets and on the cold-start protocol (10% of items hidden from training; a second
model is trained for it). Every model runs with its library defaults (`RecConfig(model=...)`, `prodlens.rec.registry`)
unless `--set` changes them.

    python bench/rec_benchmark.py --dataset beauty|scientific [--models pop,sasrec,bsarec,learn]
        [--learn-encoders minilm,e5-small] [--set dropout=0.3 --set dim=128] [--out bench-results/rec-beauty]
        [--resume] [--no-cold-start]

Each model trains in its own run directory named by its configuration (`<model>-<config digest>`), so runs with
different settings never share a directory; `--resume` continues an interrupted run of the same configuration.
Model selection is on validation only (early stopping on validation R@10); the test split is scored once, at the end.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from prodlens import atomic
from prodlens.embed import FeatureCache, default_cache_dir
from prodlens.rec import RecConfig, evaluate_recommender, load_rec_data
from prodlens.runs import config_digest

from shared_data import REC_DATASETS, rec_files

COLUMNS = ("model", "R@10", "N@10", "R@20", "N@20", "long-tail R@10", "head R@10", "cold-start R@10",
           "cold-start N@10", "valid R@10", "best epoch", "R@10 vs pop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(REC_DATASETS), default="scientific")
    ap.add_argument("--learn-encoders", default=RecConfig.encoder)
    ap.add_argument("--models", default="pop,sasrec,bsarec,learn")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="change a RecConfig default for every model in this run (repeatable)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true",
                    help="continue interrupted runs of the same configuration (default: train from scratch)")
    ap.add_argument("--no-cold-start", action="store_true", help="skip the cold-start protocol (half the training)")
    args = ap.parse_args()
    console = Console(width=160)
    inter, items = rec_files(args.dataset)
    out = args.out or Path("bench-results") / f"rec-{args.dataset}"
    data = load_rec_data(inter, items)
    cache = FeatureCache(default_cache_dir())
    runs = []
    for model in args.models.split(","):
        encoders = args.learn_encoders.split(",") if model == "learn" else [None]
        for encoder in encoders:
            name = model if encoder is None else f"{model} ({encoder})"
            base = RecConfig(model=model, encoder=encoder or RecConfig.encoder)
            cfg = base.with_settings(args.settings)
            slug = name.replace(" ", "_").replace("(", "").replace(")", "").replace(":", "-")
            run_dir = out / f"{slug}-{config_digest(cfg.to_dict())}"
            console.print(f"[bold]{name}[/bold] → {run_dir}")
            result = evaluate_recommender(inter, items, cfg, out_dir=None if model == "pop" else run_dir,
                                          cache=cache, data=data, resume=args.resume,
                                          cold_start=not args.no_cold_start)
            result["settings"] = args.settings
            runs.append((name, result))
            atomic.write_json(out / "results.json", {n: r for n, r in runs})
    table = Table(title=f"{args.dataset}: {data.summary()['users']} users, {data.n_items} items, full ranking"
                        + (f"; {' '.join(args.settings)}" if args.settings else ""), title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "model" else "right")
    base = runs[0][1]["metrics"]["R@10"] if runs and runs[0][0] == "pop" else None
    for name, r in runs:
        m, cold, training = r["metrics"], r.get("cold_start", {}), r.get("training", {})
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("R@10", "N@10", "R@20", "N@20")),
                      f"{r['long_tail']['R@10']:.4f}", f"{r['head']['R@10']:.4f}",
                      f"{cold.get('R@10', float('nan')):.4f}", f"{cold.get('N@10', float('nan')):.4f}",
                      f"{training['valid']['R@10']:.4f}" if "valid" in training else "-",
                      str(training.get("best_epoch", "-")), f"{m['R@10'] / base:.2f}x" if base else "-")
    console.print(table)
    console.print(f"results: {out / 'results.json'}")
    print(json.dumps({n: {"metrics": r["metrics"], "long_tail": r["long_tail"], "cold_start": r.get("cold_start")}
                      for n, r in runs}, default=str)[:2000])


if __name__ == "__main__":
    main()
