"""`prodlens serve --workers 2`: two processes on one port, one index, metrics summed over both."""
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_until_serving

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_two_worker_processes_serve_one_index_and_sum_their_metrics(indexed, tmp_path):
    catalog, index_dir, cache_dir = indexed
    port = free_port()
    env = {**os.environ, "PRODLENS_CACHE": str(cache_dir), "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    server = subprocess.Popen([str(BIN / "prodlens"), "serve", "--index", str(index_dir), "--port", str(port),
                               "--workers", "2"], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/health", server, log)
        product = catalog.products[sorted(catalog.products)[0]]
        answered = 0
        for _ in range(12):  # new connections: the kernel spreads them over both processes
            with httpx.Client(base_url=url, timeout=120) as client:
                r = client.post("/search", data={"text": product.title, "k": "3", "domain": "page"})
                while r.status_code == 503 and "loading" in r.text:  # the other worker may still be loading
                    r = client.post("/search", data={"text": product.title, "k": "3", "domain": "page"})
                assert r.status_code == 200, r.text
                assert r.json()["results"][0]["product_id"] == product.product_id
                answered += 1
        metrics = httpx.get(f"{url}/metrics", timeout=60).text
        counted = sum(float(v) for v in re.findall(
            r'prodlens_requests_total\{method="POST",route="/search",status="200"\} ([0-9.e+]+)', metrics))
        assert counted == answered  # whichever process answered /metrics, it counted both processes' requests
    finally:
        server.terminate()
        server.wait(60)
