"""Images/s and clips/s of `prodlens embed` in each runtime, against a plain torch forward loop, in one run.

Images (page images, nothing read): the baseline ("plain loop") opens the files with Pillow, resizes + crops,
normalises and runs one forward pass of the same EfficientNet-Lite0 torch module per batch — no hashing, no cache,
no prefetch. prodlens embed is measured cold (empty cache: hashing, decoding in a background thread, the forward
pass, cache writes) with runtime=torch and with the default runtime=onnx, and warm (a rerun: cache hits only).

Clips (generated short videos): clips/s of `prodlens embed`, cold, with the torch runtime and nothing read (the
previous default path) against the default (ONNX Runtime, and OCR on `ocr_frames` keyframes of each clip): the
faster runtime has to pay for reading.

    python bench/embed_throughput.py [--images 256] [--clips 24] [--root DIR_OF_JPEGS] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens.catalog import Catalog, Product, Sample  # noqa: E402
from prodlens.demo.synth import make_products, page_image  # noqa: E402
from prodlens.embed import EmbedConfig, FeatureCache, ProductEmbedder  # noqa: E402


def make_images(n: int, out: Path) -> list[Path]:
    specs = make_products(max(4, n // 4), seed=7)
    paths = []
    for i in range(n):
        img = page_image(specs[i % len(specs)], size=320 + (i % 5) * 64)  # varied sizes, like real photos
        if i % 2:
            img = img.rotate(7 * i % 30, expand=True, fillcolor=(240, 240, 240))
        path = out / f"img{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def make_clips(n: int, out: Path) -> list[Path]:
    from prodlens.demo.synth import clip_frames, write_mp4

    specs = make_products(max(4, n), seed=11)
    paths = []
    for i in range(n):
        path = out / f"clip{i:03d}.mp4"
        write_mp4(clip_frames(specs[i], specs[(i + 1) % len(specs):][:2], live=bool(i % 2), seed=i, n_frames=16),
                  path)
        paths.append(path)
    return paths


def plain_loop(encoder, paths: list[Path], batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        images = [Image.open(p).convert("RGB") for p in paths[i:i + batch_size]]
        encoder.forward(encoder.preprocess(images))
    return len(paths) / (time.perf_counter() - start)


def prodlens_embed(embedder: ProductEmbedder, catalog: Catalog) -> float:
    start = time.perf_counter()
    emb = embedder.embed_catalog(catalog, progress=False)
    assert len(emb) == len(catalog.samples), emb.bad.as_dicts()[:3]
    return len(catalog.samples) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--root", type=Path, help="use the JPEGs under this folder instead of generated ones")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--clips", type=int, default=24)
    args = ap.parse_args()
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.root:
            paths = sorted(args.root.rglob("*.jpg"))[: args.images]
            root = args.root
        else:
            root = tmp / "images"
            root.mkdir()
            paths = make_images(args.images, root)
        catalog = Catalog.build(root, [Product(f"p{i}") for i in range(len(paths))],
                                [Sample(f"page/{i}", f"p{i}", "page", images=(str(p.relative_to(root)),))
                                 for i, p in enumerate(paths)])
        torch_config = EmbedConfig(batch_size=args.batch_size, page_inputs="image", ocr="none", runtime="torch")
        onnx_config = replace(torch_config, runtime="onnx")
        encoder = ProductEmbedder(torch_config, FeatureCache(None)).features.image_encoder
        console.print(f"{len(paths)} images, {args.clips} clips, batch {args.batch_size}, torch threads "
                      f"{torch.get_num_threads()}, model {encoder.name}")
        plain_loop(encoder, paths[: args.batch_size], args.batch_size)  # warm-up: allocator, kernels
        baseline = plain_loop(encoder, paths, args.batch_size)
        rows.append(("images", "plain torch forward loop (baseline)", baseline, baseline))
        for name, config in (("torch", torch_config), ("onnx", onnx_config)):
            embedder = ProductEmbedder(config, FeatureCache(tmp / f"cache-{name}"))
            embedder.features.encode_frames([Image.new("RGB", (64, 64))])  # load (and export) outside the timing
            cold = prodlens_embed(embedder, catalog)
            rows.append(("images", f"prodlens embed, runtime={name}, cold cache", cold, baseline))
        warm = prodlens_embed(ProductEmbedder(onnx_config, FeatureCache(tmp / "cache-onnx")), catalog)
        rows.append(("images", "prodlens embed, warm cache (rerun)", warm, baseline))
        if args.clips:
            clip_root = tmp / "clips"
            clip_root.mkdir()
            clips = make_clips(args.clips, clip_root)
            clip_catalog = Catalog.build(clip_root, [Product(f"c{i}") for i in range(len(clips))],
                                         [Sample(f"video/{i}", f"c{i}", "video", video=p.name)
                                          for i, p in enumerate(clips)])
            old = EmbedConfig(batch_size=args.batch_size, ocr="none", runtime="torch")
            new = EmbedConfig(batch_size=args.batch_size)
            clip_rates = {}
            for name, config in (("torch, nothing read (previous default)", old),
                                 ("onnx, nothing read", replace(old, runtime="onnx")),
                                 (f"onnx + OCR on {new.ocr_frames} keyframes (default)", new),
                                 ("onnx + OCR on 1 keyframe", replace(new, ocr_frames=1)),
                                 (f"onnx + pp-ocrv6-tiny on {new.ocr_frames} keyframes",
                                  replace(new, ocr_model="pp-ocrv6-tiny"))):
                embedder = ProductEmbedder(config, FeatureCache(tmp / f"clips-{len(clip_rates)}"))
                embedder.features.encode_frames([Image.new("RGB", (64, 64))])
                clip_rates[name] = prodlens_embed(embedder, clip_catalog)
            first = next(iter(clip_rates.values()))
            rows += [("clips", name, rate, first) for name, rate in clip_rates.items()]
    table = Table(title="embedding throughput (ratio: against the first row of its kind)", title_justify="left")
    for col in ("kind", "method", "per s", "ratio"):
        table.add_column(col, justify="right" if col in ("per s", "ratio") else "left")
    for kind, name, value, base in rows:
        table.add_row(kind, name, f"{value:.1f}", f"{value / base:.2f}x")
    console.print(table)
    torch_cold = next(v for k, n, v, _ in rows if "runtime=torch" in n)
    onnx_cold = next(v for k, n, v, _ in rows if "runtime=onnx" in n)
    console.print(f"default runtime (onnx) vs torch, same pipeline, cold: {onnx_cold / torch_cold:.2f}x")


if __name__ == "__main__":
    main()
