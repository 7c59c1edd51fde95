"""Search service latency and throughput under 1, 10 and 50 concurrent clients, in one run, against a named
baseline: 1 client.

Builds an index over a generated catalogue (pages, videos and live clips), starts `prodlens serve` on loopback as
a separate process, and sends POST /search requests (photo uploads, and text) from N client threads. Each level is
bounded in requests and in time. Reports p50 / p99 latency and QPS, and QPS relative to one client.

    python bench/search_latency.py [--products 30] [--requests 200] [--seconds 60]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
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
    """(latencies in ms, wall seconds, errors) for `requests` requests spread over `clients` threads."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    def worker(worker_id: int):
        nonlocal errors
        mine = []
        with httpx.Client(base_url=url, timeout=120) as client:
            for i in range(worker_id, requests, clients):
                if time.perf_counter() > deadline:
                    break
                start = time.perf_counter()
                r = make_request(client, i)
                mine.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    errors += 1
        return mine

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        for part in pool.map(worker, range(clients)):
            latencies.extend(part)
    return latencies, time.perf_counter() - start, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=30)
    ap.add_argument("--requests", type=int, default=200, help="requests per concurrency level (upper bound)")
    ap.add_argument("--seconds", type=float, default=60, help="time bound per level")
    ap.add_argument("--levels", default="1,10,50")
    args = ap.parse_args()
    console = Console(width=130)
    from prodlens import api
    from prodlens.catalog import load_folder
    from prodlens.demo import generate_demo_catalog
    from prodlens.embed import FeatureCache

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate_demo_catalog(tmp / "catalog", n_products=args.products, videos_per_product=2,
                                     lives_per_product=2, progress=False)
        api.index_catalog(load_folder(root), tmp / "index", ("page", "video", "live"),
                          cache=FeatureCache(tmp / "cache"), progress=False)
        photos = photo_queries(root)
        titles = [p.name.replace("-", " ") for p in sorted((root / "page").iterdir())]
        port = free_port()
        env = {**os.environ, "PRODLENS_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"}
        server = subprocess.Popen([str(BIN / "prodlens"), "serve", "--index", str(tmp / "index"), "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 180
            while time.time() < deadline:
                try:
                    if httpx.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit("the server did not become ready")
            kinds = {
                "photo upload": lambda c, i: c.post("/search", files={"file": ("q.jpg", photos[i % len(photos)],
                                                                                "image/jpeg")}, data={"k": "10"}),
                "text": lambda c, i: c.post("/search", data={"text": titles[i % len(titles)], "k": "10"}),
            }
            table = Table(title=f"POST /search on loopback, index of {args.products} products (pages, videos, live)",
                          title_justify="left")
            for col in ("query", "clients", "requests", "errors", "p50 ms", "p99 ms", "QPS", "QPS vs 1 client"):
                table.add_column(col, justify="left" if col == "query" else "right")
            for kind, make in kinds.items():
                make(httpx.Client(base_url=url, timeout=120), 0)  # warm
                baseline = None
                for clients in [int(c) for c in args.levels.split(",")]:
                    lat, wall, errors = run_level(url, clients, args.requests, args.seconds, make)
                    qps = len(lat) / wall
                    baseline = baseline or qps
                    table.add_row(kind, str(clients), str(len(lat)), str(errors), f"{np.percentile(lat, 50):.1f}",
                                  f"{np.percentile(lat, 99):.1f}", f"{qps:.1f}", f"{qps / baseline:.2f}x")
            console.print(table)
            stats = httpx.get(url + "/stats").json()
            console.print(f"server-side (inside the handler): p50 {stats['latency_ms_p50']} ms, p99 "
                          f"{stats['latency_ms_p99']} ms over {stats['queries']} queries")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
