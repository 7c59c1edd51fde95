"""Images/s of `prodlens embed` against a plain forward loop over the same model and images, in one run.

Baseline ("plain loop"): for each batch, open the files with Pillow, resize + crop, normalise, one forward pass of
the same EfficientNet-Lite0 object — no hashing, no cache, no prefetch. prodlens embed is measured cold (empty
cache: hashing + decoding in a background thread + the same forward pass + cache writes) and warm (a rerun: cache
hits only). Ratios > 1 mean prodlens is faster than the baseline.

    python bench/embed_throughput.py [--images 256] [--root DIR_OF_JPEGS] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
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
    args = ap.parse_args()
    console = Console()
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
        config = EmbedConfig(batch_size=args.batch_size, page_inputs="image")
        embedder = ProductEmbedder(config, FeatureCache(tmp / "cache"))
        encoder = embedder.features.image_encoder
        console.print(f"{len(paths)} images, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
                      f"model {encoder.name}")
        plain_loop(encoder, paths[: args.batch_size], args.batch_size)  # warm-up: allocator, kernels
        baseline = plain_loop(encoder, paths, args.batch_size)
        cold = prodlens_embed(embedder, catalog)
        warm = prodlens_embed(ProductEmbedder(config, FeatureCache(tmp / "cache")), catalog)
    table = Table(title="image embedding throughput (baseline: plain forward loop)", title_justify="left")
    for col in ("method", "images/s", "ratio vs plain loop"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for name, value in [("plain forward loop", baseline), ("prodlens embed, cold cache", cold),
                        ("prodlens embed, warm cache (rerun)", warm)]:
        table.add_row(name, f"{value:.1f}", f"{value / baseline:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
