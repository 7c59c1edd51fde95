"""Recommender training throughput and full-ranking evaluation time, in one run, against a named baseline: SASRec.

Trains LEARN (MiniLM content vectors, precomputed and cached) and SASRec for a fixed number of epochs on the same
data, reports training samples/s (next-item predictions per second, inside the training loop) and the time to
score all items for 10,000 users (test cases repeated when the dataset has fewer).

    python bench/rec_train.py [--dataset scientific|beauty] [--epochs 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time

from rich.console import Console
from rich.table import Table

from prodlens.embed import FeatureCache, default_cache_dir
from prodlens.rec import RecConfig, RecTrainer, content_vectors, leave_one_out, load_rec_data, target_ranks

from shared_data import REC_DATASETS, rec_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(REC_DATASETS), default="scientific")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    inter, items = rec_files(args.dataset)
    data = load_rec_data(inter, items)
    split = leave_one_out(data)
    cases = (split.test * (10_000 // len(split.test) + 1))[:10_000]
    content = content_vectors(data.item_ids, data.item_texts, "minilm", FeatureCache(default_cache_dir()))
    rows = []
    for model in ("sasrec", "learn"):
        cfg = RecConfig(model=model, epochs=args.epochs, patience=args.epochs, eval_users=500)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = RecTrainer(cfg, data, split, tmp, content if model == "learn" else None, progress=False)
            summary = trainer.fit()
            start = time.perf_counter()
            target_ranks(trainer.model, cases, data.n_items, cfg.max_len)
            rows.append((model, summary["samples_per_s"], time.perf_counter() - start))
    base_sps, base_eval = rows[0][1], rows[0][2]
    table = Table(title=f"{args.dataset}: {data.n_items} items, {args.epochs} epochs (baseline: SASRec)",
                  title_justify="left")
    for col in ("model", "train samples/s", "vs SASRec", "eval s per 10k users", "vs SASRec"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model, sps, ev in rows:
        table.add_row(model, f"{sps:,.0f}", f"{sps / base_sps:.2f}x", f"{ev:.2f}", f"{ev / base_eval:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
