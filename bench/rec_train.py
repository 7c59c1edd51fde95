"""Recommender speed against a named baseline, in one run.

1. Training and full-catalogue scoring, baseline SASRec: BSARec, LEARN (content vectors precomputed and cached) and
   SASRec, each in its default configuration, train for a fixed number of epochs on the same data; training
   samples/s (next-item predictions per second inside the training loop) and the time to score every item for
   10,000 users.
2. Top-10 retrieval for served users, baseline brute force: a batch of user vectors against 100k and 1M item
   vectors (and the real catalogue's); brute force = score every item and sort (numpy), against what the
   recommender serves with by default (`prodlens.rec.serve.top_k_unseen`: matrix product + torch.topk, history
   masked), FAISS's exact inner-product index (flat; seen items filtered from k + |history| hits) and the HNSW graph
   it serves with above `--rec-ann-above` items (`ann_top_k_unseen`). The "exact" column counts
   the users whose top 10 is the brute-force one; recall@10 is the share of the brute-force top 10 found.

    python bench/rec_train.py [--dataset scientific|beauty] [--epochs 2] [--users 500] [--sizes 100000,1000000]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from prodlens.embed import FeatureCache, default_cache_dir
from prodlens.rec import RecConfig, RecTrainer, content_vectors, leave_one_out, load_rec_data, target_ranks
from prodlens.rec.models import pad_left
from prodlens.index import IndexConfig, VectorIndex
from prodlens.rec.serve import ann_top_k_unseen, top_k_unseen

from shared_data import REC_DATASETS, rec_files


def training_rows(data, split, epochs: int) -> list[tuple]:
    cases = (split.test * (10_000 // len(split.test) + 1))[:10_000]
    content = content_vectors(data.item_ids, data.item_texts, RecConfig.encoder, FeatureCache(default_cache_dir()))
    rows, models = [], {}
    for model in ("sasrec", "bsarec", "learn"):
        # one model of each: an ensemble trains its members one after another, at a member's speed
        cfg = RecConfig(model=model, epochs=epochs, patience=epochs, eval_users=500).member(0)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = RecTrainer(cfg, data, split, tmp, content if model == "learn" else None, progress=False)
            summary = trainer.fit()
            start = time.perf_counter()
            target_ranks(trainer.model, cases, data.n_items, cfg.max_len)
            rows.append((model, summary["samples_per_s"], time.perf_counter() - start))
            models[model] = trainer.model
    return rows, models


def brute_force(users: np.ndarray, items: np.ndarray, histories: list[list[int]], k: int,
                chunk: int = 64) -> list[list[int]]:
    """Score every item, mask the history, sort the whole row (what the recommender did before the index)."""
    out = []
    for start in range(0, len(users), chunk):  # chunks bound the score matrix's memory
        scores = users[start:start + chunk] @ items.T
        for r, h in enumerate(histories[start:start + chunk]):
            scores[r, h] = -np.inf
        out += [list(row[:k]) for row in np.argsort(-scores, axis=1, kind="stable")]
    return out


def served(users: np.ndarray, items: np.ndarray, histories: list[list[int]], k: int) -> list[list[int]]:
    one_segment = [(0, torch.from_numpy(items), torch.ones(len(items), dtype=torch.bool))]
    hits = top_k_unseen(torch.from_numpy(users), one_segment, histories, k)
    return [[i for i, _ in row] for row in hits]


def faiss_exact(index: VectorIndex, users: np.ndarray, histories: list[list[int]], k: int) -> list[list[int]]:
    depth = min(len(index), k + max(len(set(h)) for h in histories))
    _, ids = index.search(users, depth)
    return [[int(i) for i in row if i >= 0 and i not in set(h)][:k] for row, h in zip(ids, histories)]


def retrieval_rows(name: str, users: np.ndarray, items: np.ndarray, histories: list[list[int]], k: int = 10):
    built = {}
    for kind in ("flat", "hnsw"):
        start = time.perf_counter()
        built[kind] = VectorIndex.create(items.shape[1], IndexConfig(kind=kind))
        built[kind].add(items, np.arange(len(items)))
        built[f"{kind} seconds"] = time.perf_counter() - start
    results, rows = {}, []
    for method, run in (("brute force: score all, sort (baseline)", lambda: brute_force(users, items, histories, k)),
                        ("matrix product + torch.topk (served by default)",
                         lambda: served(users, items, histories, k)),
                        ("FAISS exact inner product (flat index)",
                         lambda: faiss_exact(built["flat"], users, histories, k)),
                        ("HNSW graph (served with --rec-ann-above)",
                         lambda: [[r for r, _ in row] for row in ann_top_k_unseen(
                             built["hnsw"], torch.from_numpy(users), histories, k)])):
        start = time.perf_counter()
        results[method] = run()
        rows.append([name, method, time.perf_counter() - start])
    truth = next(iter(results.values()))
    base = rows[0][2]
    for row, hits in zip(rows, results.values()):
        exact = sum(_same(a, b, users[i], items) for i, (a, b) in enumerate(zip(hits, truth)))
        recall = np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(hits, truth)])
        row += [len(users) / row[2], base / row[2], f"{exact}/{len(users)}", f"{recall:.3f}"]
    rows[2][1] += f" (built in {built['flat seconds']:.2f} s)"
    rows[3][1] += f" (built in {built['hnsw seconds']:.1f} s)"
    return rows


def _same(got: list[int], want: list[int], user: np.ndarray, items: np.ndarray) -> bool:
    """The same top-k up to exact ties in score (float32 ties can swap places between methods)."""
    if got == want:
        return True
    return np.allclose(np.sort(items[got] @ user), np.sort(items[want] @ user), rtol=0, atol=1e-5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(REC_DATASETS), default="scientific")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--users", type=int, default=500, help="users per retrieval batch")
    ap.add_argument("--sizes", default="100000,1000000", help="synthetic catalogue sizes for retrieval")
    args = ap.parse_args()
    console = Console(width=140)
    inter, items = rec_files(args.dataset)
    data = load_rec_data(inter, items)
    split = leave_one_out(data)
    rows, models = training_rows(data, split, args.epochs)
    base_sps, base_eval = rows[0][1], rows[0][2]
    table = Table(title=f"{args.dataset}: {data.n_items} items, {args.epochs} epochs, default configuration "
                        "(baseline: SASRec)", title_justify="left")
    for col in ("model", "train samples/s", "vs SASRec", "eval s per 10k users", "vs SASRec"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model, sps, ev in rows:
        table.add_row(model, f"{sps:,.0f}", f"{sps / base_sps:.2f}x", f"{ev:.2f}", f"{ev / base_eval:.2f}x")
    console.print(table)

    torch.set_grad_enabled(False)
    learn = models["learn"].eval()
    cases = split.test[: args.users]
    histories = [h for _, h, _ in cases]
    users = learn.states(pad_left(histories, learn.cfg.max_len, data.n_items))[:, -1].numpy()
    real_items = (learn.item_vectors() * learn.logit_scale()).numpy()
    retrieval = retrieval_rows(f"{data.n_items:,} ({args.dataset}, LEARN)", users, real_items, histories)
    rng = np.random.default_rng(0)
    for size in (int(s) for s in args.sizes.split(",") if s):
        synthetic = rng.standard_normal((size, users.shape[1]), dtype=np.float32)
        synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
        fake_histories = [list(rng.integers(0, size, len(h))) for h in histories]
        retrieval += retrieval_rows(f"{size:,} (random unit vectors)", users, synthetic, fake_histories)
    table = Table(title=f"top-10 for {len(users)} users, seen items excluded, d={users.shape[1]} "
                        "(baseline: brute force)", title_justify="left")
    for col in ("items", "method", "seconds", "users/s", "vs brute force", "exact top-10", "recall@10"):
        table.add_column(col, justify="left" if col in ("items", "method") else "right")
    for name, method, sec, ups, ratio, exact, recall in retrieval:
        table.add_row(name, method, f"{sec:.3f}", f"{ups:,.0f}", f"{ratio:.1f}x", exact, recall)
    console.print(table)


if __name__ == "__main__":
    main()
