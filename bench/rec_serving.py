"""Recommendation requests under concurrent load: the service's micro-batched path against one pass per request.

A trained run (`prodlens rec eval --out RUN`, or a run of bench/rec_benchmark.py) is served in this process; C client
threads each send R requests `recommend(user=..., k=10)` for random users of the run's histories.
- baseline, one pass per request: each client thread calls `Recommender.recommend_user` (what `SearchService` did
  before micro-batching: every request its own user-tower pass and its own scoring of every item, one at a time
  under the recommender's lock);
- micro-batched: each client thread calls `SearchService.recommend` (requests waiting together share one user-tower
  pass and one scoring of the items; `max_batch` 32, `batch_wait_ms` 2, the service's defaults).
Measured: users/s, and the median and 99th-percentile latency of a request. Both paths give the same items (checked).
`--items N` first grows a copy of the run's catalogue to N items (`add_items` with the content of random catalogue
items plus noise: the tower and the scoring see N real-sized rows), so the scoring's share can be seen.

    python bench/rec_serving.py --run RUN_DIR [--clients 1,8,32] [--requests 100] [--items 0]
        [--out bench-results/rec-serving]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from prodlens import api, atomic
from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog
from prodlens.embed import EmbedConfig, FeatureCache
from prodlens.rec.serve import Recommender
from prodlens.serve import SearchService, ServeConfig


def grown_copy(run: Path, items: int, out: Path) -> Path:
    """A copy of the run whose catalogue holds `items` rows: the added ones carry a catalogue item's raw content
    plus noise (no text encoder needed)."""
    copy = out / "run"
    shutil.copytree(run, copy)
    rec = Recommender(copy, histories={})
    have = rec.table.n_rows
    if items <= have:
        return copy
    rng = np.random.default_rng(0)
    for first in range(have, items, 50_000):
        n = min(50_000, items - first)
        src = rng.integers(0, have, n)
        content = rec.table.content(src)
        content = content + rng.normal(0, content.std() * 0.3, content.shape).astype(np.float32)
        rec.add_items([f"grown-{first + i}" for i in range(n)], [f"grown item {first + i}" for i in range(n)],
                      content)
    return copy


def tiny_index(out: Path, cache: FeatureCache) -> Path:
    """The service serves search too: three demo products (what is measured is the recommender)."""
    root = generate_demo_catalog(out / "catalog", n_products=3, videos_per_product=0, lives_per_product=0,
                                 progress=False)
    api.index_catalog(load_folder(root), out / "index", ("page",), EmbedConfig(frames=1), cache=cache,
                      progress=False)
    return out / "index"


def load(call, users: list[str], clients: int) -> dict:
    """`clients` threads share the users' requests; users/s over the whole run, latency per request."""
    latencies = np.zeros(len(users))
    barrier = threading.Barrier(clients)

    def client(c: int) -> None:
        barrier.wait()
        for n in range(c, len(users), clients):
            start = time.perf_counter()
            call(users[n])
            latencies[n] = time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client, c) for c in range(clients)]:
            f.result()
    seconds = time.perf_counter() - start
    return {"users_per_s": len(users) / seconds, "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p99_ms": float(np.percentile(latencies, 99) * 1000), "requests": len(users)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a trained run (LEARN, SASRec or BSARec)")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=100, help="requests per client thread")
    ap.add_argument("--items", type=int, default=0, help="grow a copy of the catalogue to this many items first")
    ap.add_argument("--wait-ms", type=float, default=ServeConfig.batch_wait_ms,
                    help="how long the first request of a batch waits for others (the service's batch_wait_ms)")
    ap.add_argument("--out", type=Path, default=Path("bench-results/rec-serving"))
    args = ap.parse_args()
    console = Console(width=160)
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = grown_copy(args.run, args.items, tmp) if args.items else args.run
        cache = FeatureCache(tmp / "cache")
        service = SearchService(ServeConfig(str(tiny_index(tmp, cache)), cache_dir=str(tmp / "cache"),
                                            rec_run=str(run), batch_wait_ms=args.wait_ms))
        baseline = Recommender(run)
        rng = np.random.default_rng(0)
        known = sorted(baseline.histories)
        for user in rng.choice(known, 20).tolist():  # the same answers both ways (and both paths warmed up)
            a = [h["item_id"] for h in baseline.recommend_user(user, 10)]
            b = [h["item_id"] for h in service.recommend(user=user, k=10)]
            if a != b:
                raise SystemExit(f"the two paths disagree for user {user}: {a} vs {b}")
        rows = []
        for clients in levels:
            users = rng.choice(known, clients * args.requests).tolist()
            one = load(lambda u: baseline.recommend_user(u, 10), users, clients)
            batched = load(lambda u: service.recommend(user=u, k=10), users, clients)
            rows.append({"clients": clients, "baseline": one, "micro_batched": batched})
            console.print(f"{clients} clients: {one['users_per_s']:,.0f} → {batched['users_per_s']:,.0f} users/s",
                          markup=False)
        n_items = service.recommender.table.n_rows
    table = Table(title=f"recommendations for random users of {args.run.name}, {n_items:,} items, "
                        f"model {baseline.cfg.model}, k 10", title_justify="left")
    for col in ("clients", "one pass per request: users/s", "p50 ms", "p99 ms", "micro-batched: users/s",
                "p50 ms", "p99 ms", "users/s ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        a, b = r["baseline"], r["micro_batched"]
        table.add_row(str(r["clients"]), f"{a['users_per_s']:,.0f}", f"{a['p50_ms']:.1f}", f"{a['p99_ms']:.1f}",
                      f"{b['users_per_s']:,.0f}", f"{b['p50_ms']:.1f}", f"{b['p99_ms']:.1f}",
                      f"{b['users_per_s'] / a['users_per_s']:.2f}x")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out / "results.json", {"run": str(args.run), "items": n_items, "rows": rows})
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for key, label in (("baseline", "one pass per request"), ("micro_batched", "micro-batched")):
        ax.plot(levels, [r[key]["users_per_s"] for r in rows], marker="o", label=label)
    ax.set(xscale="log", xlabel="concurrent clients", ylabel="users/s", title=f"{n_items:,} items")
    ax.legend()
    fig.savefig(args.out / "users_per_s.png", dpi=120, bbox_inches="tight")
    console.print(f"report: {args.out / 'results.json'}, {args.out / 'users_per_s.png'}", markup=False)


if __name__ == "__main__":
    main()
