"""Training throughput (samples/s) in one run, against a named baseline: 1 process on cached backbone features.

Compared: 1 vs 2 torchrun processes (gloo on CPU); the cached-feature path vs partial fine-tuning (the top 2 or 5
blocks of EfficientNet-Lite0 trained on cached lower activations, `train.backbone = partial`), recomputing the
frozen backbone's features from augmented pixels every step (`recompute`) and training the whole backbone
(`finetune`). Every run trains the same config on the same generated catalogue for a fixed number of steps;
samples/s comes from each run's summary.json (time inside training steps only, so start-up, feature caching and
the partial mode's one-off activation pass are excluded).

    python bench/train_throughput.py [--products 12] [--steps 40] [--partial-steps 10] [--recompute-steps 4]
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

BIN = Path(sys.executable).parent


def run(args: list[str], env: dict) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=12)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--partial-steps", type=int, default=10)
    ap.add_argument("--recompute-steps", type=int, default=4)
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PRODLENS_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"}
        from prodlens.demo import generate_demo_catalog

        root = generate_demo_catalog(tmp / "cat", n_products=args.products, videos_per_product=2,
                                     lives_per_product=2, progress=False)
        config = tmp / "bench.json"
        config.write_text(json.dumps({"train": {"epochs": 1000, "batch_products": args.products,
                                                "samples_per_product": 2, "eval_every": 0, "augment_views": 1,
                                                "backbone": "cached"}}))
        base = [str(BIN / "prodlens"), "train", "folder", "--root", str(root), "--split", "all", "--val-split", "",
                "--config", str(config)]
        console.print("filling the feature cache (not timed)...")
        run(base + ["--out", str(tmp / "warm"), "--max-steps", "1"], env)
        variants = [
            ("cached features, 1 process (baseline)", [], args.steps, "cached", {}),
            ("cached features, 2 processes (torchrun)", ["torchrun"], args.steps, "cached", {}),
            ("partial fine-tune, top 2 blocks, 1 process", [], args.partial_steps, "partial", {"trainable_blocks": 2}),
            ("partial fine-tune, top 5 blocks (default), 1 process", [], args.partial_steps, "partial",
             {"trainable_blocks": 5}),
            ("partial fine-tune, top 5 blocks, 2 processes (torchrun)", ["torchrun"], args.partial_steps, "partial",
             {"trainable_blocks": 5}),
            ("recomputed backbone features, 1 process", [], args.recompute_steps, "recompute", {}),
            ("recomputed backbone features, 2 processes (torchrun)", ["torchrun"], args.recompute_steps, "recompute",
             {}),
            ("full fine-tune from pixels, 1 process", [], args.recompute_steps, "finetune", {}),
        ]
        rows = []
        for name, launcher, steps, backbone, extra in variants:
            cfg = json.loads(config.read_text())
            cfg["train"].update(backbone=backbone, **extra)
            cfg_path = tmp / f"{backbone}-{len(rows)}.json"
            cfg_path.write_text(json.dumps(cfg))
            out = tmp / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            cmd = base[:]
            cmd[cmd.index("--config") + 1] = str(cfg_path)
            if launcher:
                cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "prodlens"] + cmd[1:]
            console.print(f"running: {name} ({steps} steps)")
            run(cmd + ["--out", str(out), "--max-steps", str(steps)], env)
            summary = json.loads((out / "summary.json").read_text())
            rows.append((name, summary["samples_per_second"], summary["world_size"]))
    baseline = rows[0][1]
    table = Table(title="training throughput (baseline: cached features, 1 process)", title_justify="left")
    for col in ("variant", "processes", "samples/s", "ratio vs baseline"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, sps, world in rows:
        table.add_row(name, str(world), f"{sps:.1f}", f"{sps / baseline:.3f}x")
    console.print(table)
    console.print(f"{os.cpu_count()} CPU cores; torchrun gives each process 1 thread (OMP_NUM_THREADS=1), "
                  "the single process uses torch's default.")


if __name__ == "__main__":
    main()
