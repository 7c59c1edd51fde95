"""LEARN training throughput with 1 and 2 torchrun processes on the same machine, baseline: one process.

Each configuration runs `prodlens rec eval` under torchrun for a fixed number of epochs (no early stopping, no
cold-start model) on the same data; the training samples/s it reports (next-item predictions per second, summed over
the processes) are compared. Threads are split evenly: N processes get cores / N threads each.

    python bench/rec_ddp.py [--dataset scientific|beauty] [--epochs 3] [--procs 1,2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shared_data import REC_DATASETS, rec_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(REC_DATASETS), default="scientific")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--procs", default="1,2")
    args = ap.parse_args()
    inter, items = rec_files(args.dataset)
    cores = os.cpu_count() or 1
    torchrun = Path(sys.executable).parent / "torchrun"
    rows = []
    for procs in (int(p) for p in args.procs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // procs)), "HF_HUB_OFFLINE": "1"}
            cmd = [str(torchrun), "--nproc_per_node", str(procs), "-m", "prodlens", "rec", "eval",
                   "--interactions", str(inter), "--items", str(items), "--out", f"{tmp}/run", "--json",
                   f"{tmp}/out.json", "--epochs", str(args.epochs), "--set", f"patience={args.epochs}",
                   "--no-cold-start"]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            result = json.loads(Path(f"{tmp}/out.json").read_text())
            rows.append((procs, result["training"]["samples_per_s"], result["metrics"]["R@10"]))
    table = Table(title=f"LEARN training on {args.dataset}, {args.epochs} epochs, {cores} cores "
                        "(baseline: 1 process)", title_justify="left")
    for col in ("processes", "threads each", "samples/s", "vs 1 process", f"test R@10 after {args.epochs} epochs"):
        table.add_column(col, justify="right")
    for procs, sps, r10 in rows:
        table.add_row(str(procs), str(max(1, cores // procs)), f"{sps:,.0f}", f"{sps / rows[0][1]:.2f}x",
                      f"{r10:.4f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
