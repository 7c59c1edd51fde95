"""ONNX export of a trained model (issue 25): output parity on the real Grocery val photos, and ONNX Runtime's
throughput against torch's on the same preprocessed batches, in the same run.

Without `--model` a model is trained first (config `tiny`, frozen backbone features, Grocery train, a few epochs):
parity and speed do not depend on how good it is, only on the graph. Both runtimes get the same pixels (the
preprocessing is not timed) and use the machine's default thread counts.

    python bench/onnx_export.py [--model RUN_OR_MODEL_DIR] [--batch 32] [--out runs/bench/onnx]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens import api, atomic  # noqa: E402
from prodlens.catalog import load_catalog  # noqa: E402
from prodlens.media import load_image  # noqa: E402
from prodlens.model import load_encoder  # noqa: E402
from prodlens.model.export import ImageTower, export_onnx  # noqa: E402
from prodlens.model.network import DOMAIN_INDEX  # noqa: E402
from shared_data import grocery_root  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/onnx"))
    args = ap.parse_args()
    root = grocery_root()
    console = Console(width=140)
    cache = api.open_cache(args.out / "cache")
    model = args.model
    if model is None:
        model = args.out / "run"
        if not (model / "model").is_dir():
            console.print("training a small model on Grocery train (frozen features)...")
            api.train_catalog("grocery", root, model, split="train", val_split=None, config="tiny", cache=cache,
                              overrides={"train": {"epochs": args.epochs, "backbone": "cached"}})
        model = model / "model"
    encoder = load_encoder(model, cache, ocr="none")  # the tower alone: what reading adds is not a runtime matter
    onnx_path = export_onnx(encoder, args.out / "tower.onnx")
    val = load_catalog("grocery", root, "val").select(domains=["live"])
    photos = [load_image(val.path(s.images[0]), s.sample_id) for s in val.samples]
    console.print(f"{len(photos)} Grocery val photos; model {encoder.name}; exported to {onnx_path}", markup=False)

    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path))
    tower = ImageTower(encoder).eval()
    dim = encoder.run_config.model.text_feature_dim
    batches = [photos[i:i + args.batch] for i in range(0, len(photos), args.batch)]
    pixels = [encoder.features.torch_image_encoder.preprocess(b).contiguous() for b in batches]
    ref = np.concatenate([encoder.embed_queries([[p] for p in b], [""] * len(b), "live") for b in batches])

    def inputs(x):
        n = len(x)
        return (x, torch.zeros(n, dim), torch.zeros(n, dtype=torch.bool),
                torch.full((n,), DOMAIN_INDEX["live"], dtype=torch.long))

    with torch.inference_mode():
        tower(*inputs(pixels[0]))  # warm-up
        start = time.perf_counter()
        torch_out = np.concatenate([tower(*inputs(x)).numpy() for x in pixels])
        torch_s = time.perf_counter() - start
    feeds = [dict(zip(("pixels", "text", "has_text", "domain"), (t.numpy() for t in inputs(x)))) for x in pixels]
    session.run(None, feeds[0])  # warm-up
    start = time.perf_counter()
    ort_out = np.concatenate([session.run(None, f)[0] for f in feeds])
    ort_s = time.perf_counter() - start
    rows = {"photos": len(photos), "max_abs_diff_vs_prodlens_torch_path": float(np.abs(ort_out - ref).max()),
            "max_abs_diff_vs_torch_tower": float(np.abs(ort_out - torch_out).max()),
            "torch_images_per_s": len(photos) / torch_s, "onnxruntime_images_per_s": len(photos) / ort_s,
            "onnxruntime_vs_torch": torch_s / ort_s, "batch": args.batch, "model": encoder.name,
            "flip_tta": encoder.feature_config.flip_tta, "cpu_cores": os.cpu_count()}
    table = Table(title="ONNX export, Grocery val photos (baseline: torch, same pixels, same run)",
                  title_justify="left")
    for col in ("runtime", "images/s", "ratio", "max |difference| vs prodlens"):
        table.add_column(col, justify="left" if col == "runtime" else "right")
    table.add_row("torch (baseline)", f"{rows['torch_images_per_s']:.1f}", "1.00x",
                  f"{float(np.abs(torch_out - ref).max()):.1e}")
    table.add_row("ONNX Runtime", f"{rows['onnxruntime_images_per_s']:.1f}", f"{rows['onnxruntime_vs_torch']:.2f}x",
                  f"{rows['max_abs_diff_vs_prodlens_torch_path']:.1e}")
    console.print(table)
    atomic.write_json(args.out / "onnx_export.json", rows)
    console.print(f"written {args.out / 'onnx_export.json'}")


if __name__ == "__main__":
    main()
