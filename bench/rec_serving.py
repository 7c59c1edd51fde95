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

The users' histories at industrial size (`--histories-interactions`, 20M by default; sessions lognormal around 10
items over 1M items, as bench/rec_scale.py): a run's histories.parquet opened as a server opens it, in a fresh
process each — baseline: a dict of Python lists (the previous release, copied below), against `UserHistories`
(arrays, binary search) — seconds, memory added, and microseconds a lookup.

    python bench/rec_serving.py [--run RUN_DIR] [--clients 1,8,32] [--requests 100] [--items 0]
        [--histories-interactions 20000000] [--out bench-results/rec-serving]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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


def write_histories(path: Path, interactions: int, n_items: int = 1_000_000, seed: int = 0) -> int:
    """A histories.parquet as a run writes it (user_id, items: a list of item ids), generated; returns its users."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(3, rng.lognormal(np.log(10), 0.8, interactions // 8).astype(np.int64))
    lengths = lengths[np.cumsum(lengths) <= interactions]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    items = pa.array(rng.zipf(1.1, int(offsets[-1])) % n_items).cast(pa.string())
    users = pa.array(rng.permutation(len(lengths)) * 7 + 1_000_000).cast(pa.string())
    pq.write_table(pa.table({"user_id": users, "items": pa.LargeListArray.from_arrays(pa.array(offsets), items)}),
                   path)
    return len(lengths)


def baseline_histories(path: Path) -> dict[str, list[str]]:
    """The previous release's histories: a dict of Python lists (kept here as the baseline)."""
    table = pq.read_table(path).to_pydict()
    return dict(zip(table["user_id"], table["items"]))


def _rss_kib() -> int:
    """The process's resident memory now (what it holds, not its high-water mark)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() // 1024


def measure_histories(kind: str, path: str) -> dict:
    """Run in a fresh process: open the histories as served, then look 10,000 random users up."""
    from prodlens.rec.serve import _saved_histories

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_before = _rss_kib()
    start = time.perf_counter()
    histories = baseline_histories(Path(path)) if kind == "baseline" else _saved_histories(Path(path).parent)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    held = _rss_kib() - rss_before
    users = pq.read_table(path, columns=["user_id"]).column("user_id").to_pylist()
    picks = [users[i] for i in np.random.default_rng(0).integers(0, len(users), 10_000)]
    start = time.perf_counter()
    total = sum(len(histories[u]) for u in picks)
    lookup = (time.perf_counter() - start) / len(picks)
    return {"seconds": seconds, "peak_added_gib": (peak - before) / 1024 ** 2, "held_gib": held / 1024 ** 2,
            "lookup_us": lookup * 1e6,
            "users": len(histories), "items_looked_up": total}


def histories_rows(interactions: int, out: Path) -> list[tuple[str, dict]]:
    path = out / f"histories-{interactions}" / "histories.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_histories(path, interactions)
    rows = []
    for kind, name in (("baseline", "baseline: dict of Python lists"), ("arrays", "UserHistories (arrays)")):
        proc = subprocess.run([sys.executable, __file__, "--measure-histories", kind, str(path)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{name}: {proc.stderr.strip()[-500:]}")
        rows.append((name, json.loads(proc.stdout.strip().splitlines()[-1])))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure-histories":
        print(json.dumps(measure_histories(sys.argv[2], sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a trained run (LEARN, SASRec or BSARec); without it, histories only")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=100, help="requests per client thread")
    ap.add_argument("--items", type=int, default=0, help="grow a copy of the catalogue to this many items first")
    ap.add_argument("--wait-ms", type=float, default=ServeConfig.batch_wait_ms,
                    help="how long the first request of a batch waits for others (the service's batch_wait_ms)")
    ap.add_argument("--histories-interactions", type=int, default=20_000_000, help="0: skip the histories")
    ap.add_argument("--out", type=Path, default=Path("bench-results/rec-serving"))
    args = ap.parse_args()
    console = Console(width=160)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    if args.histories_interactions:
        rows = histories_rows(args.histories_interactions, args.out)
        table = Table(title=f"users' histories as a server opens them: {rows[0][1]['users']:,} users, "
                            f"{args.histories_interactions:,} interactions (fresh process each)", title_justify="left")
        for col in ("histories", "open s", "peak GiB added", "GiB held", "µs a lookup",
                    "vs baseline (time / peak / held)"):
            table.add_column(col, justify="left" if col == "histories" else "right")
        base = rows[0][1]
        for name, r in rows:
            table.add_row(name, f"{r['seconds']:.1f}", f"{r['peak_added_gib']:.2f}", f"{r['held_gib']:.2f}",
                          f"{r['lookup_us']:.1f}", f"{base['seconds'] / r['seconds']:.1f}x faster / "
                          f"{base['peak_added_gib'] / max(r['peak_added_gib'], 1e-3):.1f}x / "
                          f"{base['held_gib'] / max(r['held_gib'], 1e-3):.1f}x less")
        console.print(table)
        report["histories"] = [{"histories": n, **r} for n, r in rows]
        atomic.write_json(args.out / "results.json", report)
    if args.run is None:
        return
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = grown_copy(args.run, args.items, tmp) if args.items else args.run
        cache = FeatureCache(tmp / "cache")
        service = SearchService(ServeConfig(str(tiny_index(tmp, cache)), cache_dir=str(tmp / "cache"),
                                            rec_run=str(run), batch_wait_ms=args.wait_ms))
        baseline = Recommender(run)
        rng = np.random.default_rng(0)
        known = [u for u in baseline.histories if baseline.histories[u]]  # a run may keep users with no items left
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
    report.update({"run": str(args.run), "items": n_items, "rows": rows})
    atomic.write_json(args.out / "results.json", report)
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
