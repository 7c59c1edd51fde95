"""Search service latency and throughput under 1, 10 and 50 concurrent clients, in one run, against a named
baseline: the serialised service (`--max-batch 1`: every query its own forward pass, as before micro-batching).

Builds an index over a generated catalogue (pages, videos and live clips), then for each server setup — serialised,
micro-batched (the default), micro-batched with 2 worker processes (`batched-2-workers`) — starts `prodlens serve`
on loopback as a separate process and sends POST /search requests (photo uploads, and text) from N concurrent
clients (asyncio tasks). Each level is bounded in requests and in time. Reports p50 / p99 latency and QPS, QPS relative to the serialised service at the
same number of clients, and p99 relative to the same server's 1-client p99; `--out` writes them as JSON.

    python bench/search_latency.py [--products 30] [--requests 200] [--seconds 60] [--out report.json]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_queries(catalog_dir: Path, n: int = 20) -> list[bytes]:
    """Photos a user might upload: video frames of the catalogue's clips, re-encoded as JPEG."""
    from prodlens.media import sample_frames

    clips = sorted((catalog_dir / "live").rglob("*.mp4"))[:n]
    out = []
    for clip in clips:
        frame = sample_frames(clip, 1)[0]
        buf = io.BytesIO()
        frame.save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def run_level(url: str, clients: int, requests: int, seconds: float, make_request) -> tuple[list[float], float, int]:
    """(latencies in ms, wall seconds, errors) of `clients` concurrent clients, each sending its next request when its
    last one is answered, until `requests` were sent or `seconds` passed. The clients are asyncio tasks on one thread
    and one connection pool each: a light load generator, since it shares the machine's cores with the server."""
    return asyncio.run(_level(url, clients, requests, seconds, make_request))


async def _level(url, clients, requests, seconds, make_request):
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client_loop(client_id: int):
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            for i in range(client_id, requests, clients):
                if time.perf_counter() > deadline:
                    break
                start = time.perf_counter()
                try:
                    ok = (await make_request(client, i)).status_code == 200
                except httpx.TransportError:  # a dropped connection is an error of the server under load
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in range(clients)))
    return latencies, time.perf_counter() - start, errors


SETUPS = {  # name → extra `prodlens serve` arguments
    "serialised": ["--max-batch", "1"],
    "batched": [],
    "batched-2-workers": ["--workers", "2"],
}


def start_server(index: Path, env: dict, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([str(BIN / "prodlens"), "serve", "--index", str(index), "--port", str(port), *extra],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while server.poll() is None:  # ready when /health says so, however long loading takes on a busy machine
        try:
            if httpx.get(url + "/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server ({' '.join(extra) or 'default'}) exited with {server.returncode} before ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=30)
    ap.add_argument("--requests", type=int, default=200, help="requests per concurrency level (upper bound)")
    ap.add_argument("--seconds", type=float, default=60, help="time bound per level")
    ap.add_argument("--levels", default="1,10,50")
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, of: {', '.join(SETUPS)}")
    ap.add_argument("--out", type=Path, help="write the measurements here (JSON)")
    args = ap.parse_args()
    console = Console(width=150)
    from prodlens import api
    from prodlens.catalog import load_folder
    from prodlens.demo import generate_demo_catalog
    from prodlens.embed import FeatureCache

    setups = [s.strip() for s in args.setups.split(",")]
    levels = [int(c) for c in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate_demo_catalog(tmp / "catalog", n_products=args.products, videos_per_product=2,
                                     lives_per_product=2, progress=False)
        api.index_catalog(load_folder(root), tmp / "index", ("page", "video", "live"),
                          cache=FeatureCache(tmp / "cache"), progress=False)
        photos = photo_queries(root)
        titles = [p.name.replace("-", " ") for p in sorted((root / "page").iterdir())]
        env = {**os.environ, "PRODLENS_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"}
        kinds = {
            "photo upload": lambda c, i: c.post("/search", files={"file": ("q.jpg", photos[i % len(photos)],
                                                                            "image/jpeg")}, data={"k": "10"}),
            "text": lambda c, i: c.post("/search", data={"text": titles[i % len(titles)], "k": "10"}),
        }
        rows = []
        for setup in setups:
            server, url = start_server(tmp / "index", env, SETUPS[setup])
            try:
                for kind, make in kinds.items():
                    run_level(url, 4, 8, 60, make)  # warm: every worker process, likely
                    for clients in levels:
                        lat, wall, errors = run_level(url, clients, args.requests, args.seconds, make)
                        rows.append({"setup": setup, "query": kind, "clients": clients, "requests": len(lat),
                                     "errors": errors, "p50_ms": float(np.percentile(lat, 50)),
                                     "p99_ms": float(np.percentile(lat, 99)), "qps": len(lat) / wall})
                        console.print(rows[-1], markup=False)  # progress: a level takes up to --seconds
            finally:
                server.terminate()
                server.wait(30)
    base = {(r["query"], r["clients"]): r["qps"] for r in rows if r["setup"] == setups[0]}
    one = {(r["setup"], r["query"]): r["p99_ms"] for r in rows if r["clients"] == levels[0]}
    table = Table(title=f"POST /search on loopback, index of {args.products} products (pages, videos, live); "
                        f"baseline: {setups[0]}", title_justify="left")
    for col in ("server", "query", "clients", "requests", "errors", "p50 ms", "p99 ms", "QPS",
                f"QPS vs {setups[0]}", f"p99 vs its {levels[0]}-client p99"):
        table.add_column(col, justify="left" if col in ("server", "query") else "right")
    for r in rows:
        r["qps_vs_baseline"] = r["qps"] / base[(r["query"], r["clients"])]
        r["p99_vs_one_client"] = r["p99_ms"] / one[(r["setup"], r["query"])]
        table.add_row(r["setup"], r["query"], str(r["clients"]), str(r["requests"]), str(r["errors"]),
                      f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['qps']:.1f}", f"{r['qps_vs_baseline']:.2f}x",
                      f"{r['p99_vs_one_client']:.2f}x")
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps({"products": args.products, "baseline": setups[0], "rows": rows}, indent=2))
        console.print(f"report: {args.out}", markup=False)


if __name__ == "__main__":
    main()
