"""ANN index speed, recall and memory in one run, against two named exact baselines: numpy brute force (BLAS pinned
to --threads) and FAISS's own exact index (IndexFlatIP, the index `--kind flat` builds), both on the same threads.

N random unit vectors (d = 128, the trained embedding size) and Q held-out random queries drawn the same way:
`--data clustered` (default) draws them around 10,000 random centres, as real embeddings cluster by product and
category; `--data uniform` draws them uniformly on the sphere, where the 10th neighbour is barely nearer than a
random point and no ANN method can reach high recall cheaply (the worst case, reported for honesty). For every index kind
(prodlens.index.VectorIndex: flat, hnsw at a few efSearch values, ivfpq at a few nprobe values) it reports
single-query QPS (one query per call, like the search service), QPS ratios vs both baselines, recall@10 against the
exact top-10, build time, and the index's size per million vectors. Random vectors on the sphere are the hard case
for ANN (no cluster structure); a real catalogue's embeddings are easier.

    python bench/ann_index.py [--n 1000000] [--queries 300] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from prodlens.index import IndexConfig, VectorIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    out = np.empty((n, d), np.float32)
    for i in range(0, n, 100_000):  # in chunks: keeps the float64 temporary small
        x = rng.standard_normal((min(100_000, n - i), d))
        out[i:i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, spread: float) -> np.ndarray:
    out = np.empty((n, centres.shape[1]), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        x = centres[rng.integers(0, len(centres), m)] + spread * rng.standard_normal((m, centres.shape[1])) / np.sqrt(
            centres.shape[1])
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed_queries(fn, queries: np.ndarray, budget_s: float = 30.0) -> tuple[np.ndarray, float]:
    """Run fn(q) per query (until the time budget), return (ids of the answered queries, QPS)."""
    out, start = [], time.perf_counter()
    for q in queries:
        out.append(fn(q[None, :]))
        if time.perf_counter() - start > budget_s:
            break
    elapsed = time.perf_counter() - start
    return np.concatenate(out), len(out) / elapsed


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10]) & set(t[:10])) / 10 for f, t in zip(found, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="FAISS / BLAS threads for the queries")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    ap.add_argument("--centres", type=int, default=10_000)
    ap.add_argument("--spread", type=float, default=0.6, help="clustered: noise norm relative to the centre's")
    args = ap.parse_args()
    console = Console(width=150)
    rng = np.random.default_rng(0)
    console.print(f"{args.n:,} random unit vectors ({args.data}), d={args.dim}; {args.queries} queries; "
                  f"{args.threads} thread(s)")
    if args.data == "uniform":
        base, queries = unit(rng, args.n, args.dim), unit(rng, args.queries, args.dim)
    else:
        centres = unit(rng, args.centres, args.dim)
        base = clustered(rng, centres, args.n, args.spread)
        queries = clustered(rng, centres, args.queries, args.spread)
    ids = np.arange(args.n, dtype=np.int64)

    faiss.omp_set_num_threads(2)  # builds use both cores
    console.print("exact top-10 (batched ground truth)…")
    truth = np.concatenate([np.argsort(-(queries[i:i + 50] @ base.T), axis=1)[:, :10]
                            for i in range(0, len(queries), 50)])

    rows = []
    faiss.omp_set_num_threads(args.threads)

    def brute(q):
        sims = q @ base.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)

    with threadpool_limits(limits=args.threads):  # numpy's BLAS gets the same threads as FAISS's queries
        found, qps = timed_queries(brute, queries)
    baseline_qps = qps
    rows.append(("numpy brute force (baseline 1)", "-", qps, recall_at_10(found, truth), 0.0, base.nbytes))

    configs = [("flat (FAISS exact, baseline 2)", IndexConfig(kind="flat"), [{}]),
               ("hnsw", IndexConfig(kind="hnsw", hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction),
                [{"hnsw_ef_search": ef} for ef in (64, 128, 256, 512)]),
               ("ivfpq", IndexConfig(kind="ivfpq"), [{"ivf_probe": p} for p in (16, 64, 256)])]
    for name, config, sweeps in configs:
        faiss.omp_set_num_threads(2)
        console.print(f"building {name}…")
        start = time.perf_counter()
        index = VectorIndex.create(args.dim, config, base[: min(len(base), 200_000)] if name == "ivfpq" else base)
        for i in range(0, args.n, 100_000):
            index.add(base[i:i + 100_000], ids[i:i + 100_000])
        build_s = time.perf_counter() - start
        size = index.memory_bytes()
        faiss.omp_set_num_threads(args.threads)
        for sweep in sweeps:
            for key, value in sweep.items():
                setattr(index.config, key, value)
            label = ", ".join(f"{k.split('_')[-1]}={v}" for k, v in sweep.items()) or "-"
            found, qps = timed_queries(lambda q: index.search(q, 10)[1], queries)
            rows.append((name, label, qps, recall_at_10(found, truth[: len(found)]), build_s, size))

    flat_qps = rows[1][2]
    table = Table(title=f"ANN vs exact search, {args.n:,} x {args.dim}-d ({args.data}), single-query QPS, "
                        f"{args.threads} thread(s)", title_justify="left")
    for col in ("index", "setting", "QPS", "vs numpy", "vs FAISS exact", "recall@10", "build s", "MB per 1M vectors"):
        table.add_column(col, justify="left" if col in ("index", "setting") else "right")
    for name, label, qps, recall, build_s, size in rows:
        table.add_row(name, label, f"{qps:,.0f}", f"{qps / baseline_qps:,.1f}x", f"{qps / flat_qps:,.1f}x",
                      f"{recall:.3f}", f"{build_s:.0f}" if build_s else "-", f"{size / args.n * 1e6 / 2**20:,.0f}")
    console.print(table)
    for label, base_qps in (("numpy brute force", baseline_qps), ("FAISS exact", flat_qps)):
        ok = [r for r in rows[2:] if r[3] >= 0.95 and r[2] / base_qps >= 20]
        console.print(f"target (>= 20x {label} at recall@10 >= 0.95): " +
                      (f"met by {', '.join(f'{r[0]} {r[1]}' for r in ok)}" if ok else "not met"))


if __name__ == "__main__":
    main()
