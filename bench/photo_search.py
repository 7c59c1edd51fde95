"""Photo search over HTTP on the Grocery Store: in-store photos (a split's) posted to /search against an index of the
81 product pages, with and without reading the text in the pictures (OCR), vector-only and hybrid retrieval, in the
same run. Reports top-1 / top-5 (one hit per product) for all photos and per coarse group: packaged products
(juice, milk, yoghurt...: the pages under Packages/) and fresh produce (fruit, vegetables).

    python bench/photo_search.py [--split val] [--every 1] [--checkpoint RUN_OR_MODEL] [--out report.json]

`--every 4` posts every fourth photo (the train split is 2,640). With `--checkpoint` the index is built by that
trained model (its own OCR setting, and `ocr=none` for the comparison row) instead of the zero-shot encoders.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402


def score(client, catalog, photos, packaged: set[str]) -> dict:
    hits = {"all": [], "packaged": [], "fresh": []}
    read = 0
    for s in photos:
        data = (catalog.root / s.images[0]).read_bytes()
        r = client.post("/search", files={"file": (Path(s.images[0]).name, data, "image/jpeg")},
                        data={"k": "5", "domain": "page"})
        r.raise_for_status()
        body = r.json()
        read += bool(body["query"].get("read"))
        ranked = [h["product_id"] for h in body["results"]]
        outcome = (ranked[:1] == [s.product_id], s.product_id in ranked[:5])
        hits["all"].append(outcome)
        hits["packaged" if s.product_id in packaged else "fresh"].append(outcome)
    out = {"read": read / max(1, len(photos))}
    for group, outcomes in hits.items():
        n = max(1, len(outcomes))
        out[group] = {"n": len(outcomes), "top1": sum(a for a, _ in outcomes) / n, "top5": sum(b for _, b in outcomes) / n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None, help="grocery-store directory (default: ../shared)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--every", type=int, default=1, help="post every n-th photo of the split")
    ap.add_argument("--checkpoint", type=Path, default=None, help="a trained run or model directory")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from prodlens import api, load_encoder
    from prodlens.catalog import load_catalog
    from prodlens.embed import EmbedConfig
    from prodlens.serve import SearchService, ServeConfig, create_app

    root = grocery_root(args.root)
    console = Console(width=140)
    catalog = load_catalog("grocery", root, split=args.split)
    photos = [s for s in catalog.samples if s.domain == "live"][::args.every]
    packaged = {s.product_id for s in catalog.samples if s.domain == "page" and "/Packages/" in f"/{s.images[0]}"}
    cache = api.open_cache()
    rows = []
    for ocr in ("none", "text"):
        if args.checkpoint:
            encoder = load_encoder(args.checkpoint, cache)
            if ocr == "none":
                encoder = load_encoder(args.checkpoint, cache, ocr="none") if encoder.features.config.ocr != "none" \
                    else encoder
            model = {"encoder": encoder}
        else:
            model = {"config": EmbedConfig(ocr=ocr)}
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            api.index_catalog(catalog, Path(tmp) / "index", ("page",), cache=cache, progress=False, **model)
            built = time.perf_counter() - start
            service = SearchService(ServeConfig(str(Path(tmp) / "index")))
            for retrieval in ("vector", "hybrid"):
                service.config = replace(service.config, retrieval=retrieval)
                start = time.perf_counter()
                with TestClient(create_app(service.config, service)) as client:
                    result = score(client, catalog, photos, packaged)
                rows.append({"ocr": ocr, "retrieval": retrieval, "index_s": built,
                             "photos_per_s": len(photos) / (time.perf_counter() - start), **result})
                console.print(f"ocr={ocr} retrieval={retrieval}: {json.dumps(result)}", markup=False)
    table = Table(title=f"Photo search over HTTP, Grocery {args.split} in-store photos → 81 product pages "
                        f"({'trained ' + str(args.checkpoint) if args.checkpoint else 'zero-shot'}; one hit per product)",
                  title_justify="left")
    for col in ("ocr", "retrieval", "photos", "all top-1", "all top-5", "packaged top-1", "packaged top-5",
                "fresh top-1", "fresh top-5", "photos read", "photos/s"):
        table.add_column(col, justify="left" if col in ("ocr", "retrieval") else "right")
    for r in rows:
        table.add_row(r["ocr"], r["retrieval"], str(r["all"]["n"]), *(f"{r[g][m]:.3f}" for g in
                      ("all", "packaged", "fresh") for m in ("top1", "top5")), f"{r['read']:.2f}",
                      f"{r['photos_per_s']:.1f}")
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
        console.print(f"report: {args.out}", markup=False)


if __name__ == "__main__":
    main()
