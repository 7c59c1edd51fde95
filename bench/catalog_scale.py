"""The data path at ROPE's size, on this machine, against named baselines measured in the same run.

1. Import: ROPE-format catalogues of 100k and 1M samples (rows written exactly as the spec shows them, shuffled;
   ROPE's domain shares; 8 frames per clip) → `prodlens catalog import rope`, each in its own process: wall time
   and peak RSS (the child's ru_maxrss). Then reading the 1M manifest: streaming the training split's clips in
   batches (ManifestView) against loading it whole into Python objects (`load_manifest`, the old way).
2. Embedding throughput on a catalogue whose images exist (tiny shared JPEGs, hard-linked under ROPE names):
   a plain single-process loop (baseline: decode every frame, one forward pass per batch, no cache, no shards),
   `prodlens embed manifest` in one process, and `torchrun --nproc_per_node 2` (each rank one thread).
3. Extrapolation to ROPE's 12.4M samples (train + test).

    python bench/catalog_scale.py [--sizes 100000,1000000] [--embed-samples 600] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

BIN = Path(sys.executable).parent
ROPE_SAMPLES = 12_423_000  # train 12.33M + test 0.09M (shared/specs/rope-format.md)


def run_measured(args: list[str], env: dict | None = None) -> float:
    """Wall seconds of a command (which must succeed)."""
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def child_peak(code: str) -> tuple[float, float, str]:
    """Run python code in a fresh process; its own peak RSS comes back from getrusage(RUSAGE_SELF)."""
    wrapped = code + "\nimport resource, sys\nprint('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak = next(int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_KB"))
    return seconds, peak / 1024, proc.stdout


def import_once(root: Path, out: Path) -> tuple[float, float]:
    code = (f"import time\nfrom prodlens.catalog import import_rope\nt = time.perf_counter()\n"
            f"r = import_rope({str(root)!r}, {str(out)!r}, progress=False)\n"
            f"print('SECONDS', time.perf_counter() - t, r.samples, r.bad)\n")
    _, peak, stdout = child_peak(code)
    seconds = float(next(line.split()[1] for line in stdout.splitlines() if line.startswith("SECONDS")))
    return seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--embed-samples", type=int, default=600)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--work", type=Path, default=None, help="keep the generated catalogues here")
    args = ap.parse_args()
    console = Console(width=150)
    work = args.work or Path(tempfile.mkdtemp(prefix="catalog-scale-"))
    from prodlens.demo.rope_files import write_rope_files

    # 1. import -------------------------------------------------------------------------------------------------
    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        root = work / f"rope-{n}"
        if not (root / "training_live_clips.txt").exists():
            console.print(f"writing a ROPE-format catalogue of {n:,} samples…")
            write_rope_files(root, n, frames=args.frames, seed=1)
        size_mb = sum(p.stat().st_size for p in root.glob("training_*.txt")) / 2**20
        console.print(f"importing {n:,} samples ({size_mb:,.0f} MB of text)…")
        seconds, peak = import_once(root, work / f"manifest-{n}")
        rows.append((n, size_mb, seconds, peak))
    table = Table(title="prodlens catalog import rope (one process; peak RSS of that process)", title_justify="left")
    for col in ("samples", "text MB", "seconds", "samples/s", "peak RSS MB", "RSS vs smallest"):
        table.add_column(col, justify="right")
    for n, size_mb, seconds, peak in rows:
        table.add_row(f"{n:,}", f"{size_mb:,.0f}", f"{seconds:.1f}", f"{n / seconds:,.0f}", f"{peak:,.0f}",
                      f"{peak / rows[0][3]:.2f}x")
    console.print(table)

    # reading the largest manifest: streamed vs whole
    biggest = work / f"manifest-{sizes[-1]}"
    stream_code = (f"import time\nfrom prodlens.catalog import open_manifest\nt = time.perf_counter()\n"
                   f"v = open_manifest({str(biggest)!r}, split='train', domains=['video', 'live'])\n"
                   f"n = sum(len(b) for b in v.iter_samples(4096))\nprint('N', n, time.perf_counter() - t)\n")
    whole_code = (f"import time\nfrom prodlens.catalog import load_manifest\nt = time.perf_counter()\n"
                  f"c = load_manifest({str(biggest)!r}).select('train', ['video', 'live'])\n"
                  f"print('N', len(c.samples), time.perf_counter() - t)\n")
    read_rows = []
    for name, code in (("load_manifest: whole catalogue as Python objects (baseline)", whole_code),
                       ("open_manifest: stream the selection in batches of 4,096", stream_code)):
        _, peak, out = child_peak(code)
        line = next(x for x in out.splitlines() if x.startswith("N "))
        read_rows.append((name, int(line.split()[1]), float(line.split()[2]), peak))
    table = Table(title=f"reading the {sizes[-1]:,}-sample manifest: train clips", title_justify="left")
    for col in ("method", "samples", "seconds", "peak RSS MB", "RSS vs baseline"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, count, seconds, peak in read_rows:
        table.add_row(name, f"{count:,}", f"{seconds:.1f}", f"{peak:,.0f}", f"{peak / read_rows[0][3]:.2f}x")
    console.print(table)

    # 2. embedding throughput -------------------------------------------------------------------------------------
    embed_root = work / f"rope-embed-{args.embed_samples}"
    if not (embed_root / "training_live_clips.txt").exists():
        write_rope_files(embed_root, args.embed_samples, frames=args.frames, seed=2, media_samples=args.embed_samples)
    manifest = work / "manifest-embed"
    from prodlens.catalog import import_rope, open_manifest

    import_rope(embed_root, manifest, progress=False)
    samples = open_manifest(manifest).count()
    shard_rows = max(16, samples // 8)  # 8 shards: work for 2 ranks to share
    console.print(f"embedding {samples} samples ({args.frames} frames per clip), shards of {shard_rows} rows…")
    baseline_s = plain_loop(manifest, args.frames)
    env = {"PRODLENS_CACHE": str(work / "unused-cache")}
    common = ["embed", "manifest", "--root", str(manifest), "--frames", str(args.frames), "--shard-rows",
              str(shard_rows), "--no-cache"]
    one_s = run_measured([str(BIN / "prodlens"), *common, "--out", str(work / "emb-1")], env)
    two_s = run_measured([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "prodlens",
                                *common, "--out", str(work / "emb-2")], {**env, "OMP_NUM_THREADS": "1"})
    table = Table(title=f"embedding {samples} ROPE samples (baseline: plain single-process loop)", title_justify="left")
    for col in ("method", "seconds", "samples/s", "vs plain loop", "vs 1 rank", "ROPE 12.4M on this machine"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, seconds in (("plain loop: decode + forward, 1 process, 2 threads", baseline_s),
                          ("prodlens embed manifest, 1 process, 2 threads", one_s),
                          ("torchrun --nproc_per_node 2 (1 thread each)", two_s)):
        rate = samples / seconds
        table.add_row(name, f"{seconds:.1f}", f"{rate:.2f}", f"{baseline_s / seconds:.2f}x", f"{one_s / seconds:.2f}x",
                      f"{ROPE_SAMPLES / rate / 86400:,.0f} days")
    console.print(table)
    # 3. extrapolation of the import
    n, _, seconds, peak = rows[-1]
    console.print(f"import extrapolated to ROPE's {ROPE_SAMPLES:,} samples: {seconds * ROPE_SAMPLES / n / 60:.0f} min "
                  f"in one process; memory is bounded by the bucket, not the dataset (peak {peak:,.0f} MB at "
                  f"{n:,}, {peak / rows[0][3]:.2f}x the {rows[0][0]:,} run)")
    console.print(f"catalogues kept in {work}" if args.work else "")


def plain_loop(manifest: Path, frames: int) -> float:
    """Baseline: every sample's frames decoded and pushed through the same encoder in batches of 32 images, in this
    process: no hashing, no cache, no shards, no text."""
    from prodlens.catalog import open_manifest
    from prodlens.embed import EmbedConfig, ProductEmbedder
    from prodlens.media import load_image, uniform_positions

    view = open_manifest(manifest)
    encoder = ProductEmbedder(EmbedConfig(frames=frames)).features.image_encoder
    encoder.encode([load_image(next(p for p in (view.root / n for b in view.iter_samples(1) for s in b
                                                for n in s.images)), "warm-up")])
    start = time.perf_counter()
    pending = []
    for batch in view.iter_samples(256):
        for s in batch:
            pending += [load_image(view.root / s.images[i], s.sample_id)
                        for i in uniform_positions(len(s.images), frames)]
            while len(pending) >= 32:
                encoder.encode(pending[:32])
                pending = pending[32:]
    if pending:
        encoder.encode(pending)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
