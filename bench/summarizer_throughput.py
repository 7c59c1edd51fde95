"""Summariser throughput for a real catalogue: transcripts/s of today's sequential loop (one transcript at a time,
in-process llama.cpp) against batched summarisation in the same run:

- llama.cpp's own OpenAI-compatible server (`llama-server`) with parallel slots and continuous batching, fed
  `--concurrency` requests at once by `Summarizer.summarize_many` (the scale-out path: vLLM works the same way);
- in-process batched decoding with transformers (`complete_many`), when `--transformers` is given (slow on CPU).

Every setting summarises the same transcripts with the same model and the same validation/grounding; the share of
valid outputs is shown next to the speed, so a faster setting that answers worse does not pass unnoticed.

    make llama-server    # builds llama.cpp's server once (cached in ~/.cache/prodlens/bin)
    python bench/summarizer_throughput.py [--n 48] [--model smollm2-135m] [--concurrency 8] [--transformers]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens.demo.synth import host_chatter, make_products  # noqa: E402
from prodlens.embed import FeatureCache  # noqa: E402
from prodlens.progress import progress_bar  # noqa: E402
from prodlens.text import Summarizer  # noqa: E402
from prodlens.text.llm import OFFLINE_LLMS  # noqa: E402

DEFAULT_SERVER = Path.home() / ".cache" / "prodlens" / "bin" / "llama-server-avx2"


def transcripts(n: int) -> list[tuple[str, str, str]]:
    specs = make_products(n, seed=21)
    rng = random.Random(7)
    return [(f"clip/{i}", host_chatter(spec, specs[(i + 1) % n], rng, noisy=True), "") for i, spec in enumerate(specs)]


def sequential(spec: str, items) -> tuple[float, float]:
    s = Summarizer(spec, FeatureCache(None))
    s.summarize("warm up with a short text about a shampoo")
    start, ok = time.perf_counter(), 0
    with progress_bar(len(items), f"sequential: {spec}") as advance:
        for rec, text, title in items:
            try:
                s.summarize(text, title, rec)
                ok += 1
            except Exception:  # noqa: BLE001 - counted as not valid
                pass
            advance(1)
    return len(items) / (time.perf_counter() - start), ok / len(items)


def batched(spec: str, items, concurrency: int) -> tuple[float, float]:
    s = Summarizer(spec, FeatureCache(None))
    s.summarize("warm up with a short text about a shampoo")
    start = time.perf_counter()
    out, _ = s.summarize_many(items, concurrency=concurrency)
    return len(items) / (time.perf_counter() - start), len(out) / len(items)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(binary: str, gguf: Path, slots: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "--parallel",
                             str(slots), "--cont-batching", "--ctx-size", str(2048 * slots), "--threads", str(threads),
                             "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:  # wait for readiness (the model loads), not for a clock
        if proc.poll() is not None:
            raise SystemExit(f"{binary} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--model", default="smollm2-135m", choices=sorted(OFFLINE_LLMS))
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--server", default=os.environ.get("PRODLENS_LLAMA_SERVER") or shutil.which("llama-server")
                    or str(DEFAULT_SERVER))
    ap.add_argument("--transformers", action="store_true", help="also time in-process batched transformers")
    args = ap.parse_args()
    items = transcripts(args.n)
    threads = os.cpu_count() or 2
    rows = [("sequential loop, llama.cpp in-process (baseline)", *sequential(f"{args.model}:llama", items))]
    if Path(args.server).is_file():
        gguf = OFFLINE_LLMS[args.model][0]()
        proc, url = start_server(args.server, gguf, args.concurrency, threads)
        try:
            spec = f"{url}/v1::{args.model}"
            rows.append(("llama-server, 1 request at a time", *batched(spec, items, 1)))
            rows.append((f"llama-server, {args.concurrency} slots, {args.concurrency} requests at once",
                         *batched(spec, items, args.concurrency)))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    else:
        Console().print(f"[yellow]{args.server} not found: `make llama-server` builds it; server rows skipped")
    if args.transformers:
        rows.append(("transformers in-process, 1 at a time", *batched(f"{args.model}:transformers", items, 1)))
        rows.append((f"transformers in-process, batches of {args.concurrency}",
                     *batched(f"{args.model}:transformers", items, args.concurrency)))
    base = rows[0][1]
    table = Table(title=f"summariser throughput, {args.n} noisy transcripts, {args.model}, {threads} CPU threads",
                  title_justify="left")
    for col in ("setting", "transcripts/s", "vs sequential loop", "valid outputs"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for name, rate, valid in rows:
        table.add_row(name, f"{rate:.2f}", f"{rate / base:.2f}x", f"{valid:.0%}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
