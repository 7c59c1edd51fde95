"""The search API's own costs, in one run, on the Grocery product pages (81 products, default zero-shot index),
in-process over HTTP (FastAPI's test client, so the network is not measured):

- JSON vs form: the same text queries sent as a JSON body and as a multipart form (the web page's), interleaved;
  median and p90 latency of each, and their ratio (target: JSON within 10% of the form);
- a product added over HTTP (POST /items, picture + title + attributes): the add's own time, then how long until
  a search by its photo finds it (target: within 1 s of the add returning);
- query rewriting (`--rewriter`, default qwen2.5-1.5b): a query's first search (the LLM runs) vs the same query
  again (cached; target: costs nothing more than a search without rewriting).

    python bench/search_api.py [--root ../shared/data/grocery-store] [--queries 100] [--out report.json]
"""
from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    out = call()
    return (time.perf_counter() - start) * 1000, out


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rewriter", default="qwen2.5-1.5b", help="'' to skip the rewriting rows")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from prodlens import api
    from prodlens.cache import open_cache
    from prodlens.catalog import load_catalog
    from prodlens.serve import SearchService, ServeConfig, create_app

    root = grocery_root(args.root)
    catalog = load_catalog("grocery", root, split="val")
    with open(HERE / "data" / "grocery_shopper_queries.tsv", newline="") as f:
        texts = [r["query"] for r in csv.DictReader(f, delimiter="\t")][:args.queries]
    report = {}
    cache = open_cache()
    with tempfile.TemporaryDirectory() as tmp:
        api.index_catalog(catalog, Path(tmp) / "index", ("page",), cache=cache, progress=False)
        config = ServeConfig(str(Path(tmp) / "index"), cache_dir=str(cache.path), api_key="bench")
        service = SearchService(config)
        with TestClient(create_app(config, service)) as client:
            for text in texts[:10]:  # warm-up
                client.post("/search", json={"text": text})
            form, js = [], []
            for text in texts:
                form.append(timed(lambda: client.post("/search", data={"text": text, "k": "10"}))[0])
                js.append(timed(lambda: client.post("/search", json={"text": text, "k": 10}))[0])
            report["form"], report["json"] = summary(form), summary(js)
            report["json_vs_form"] = round(report["json"]["median_ms"] / report["form"]["median_ms"], 3)

            photo = catalog.by_domain("live")[0]
            img = Image.open(catalog.path(photo.images[0])).convert("RGB")
            buf = io.BytesIO()
            img.putpixel((0, 0), tuple(uuid.uuid4().bytes[:3]))  # bytes no cache has seen: the add embeds for real
            img.save(buf, format="JPEG", quality=90)
            data = base64.b64encode(buf.getvalue()).decode()
            item = {"product_id": "BENCH-NEW", "title": "Lingonberry jam", "category": "Jam",
                    "attributes": {"brand": "Skogsbär", "price": 4.5}, "image_base64": data}
            add_ms, r = timed(lambda: client.post("/items", json=item, headers={"X-API-Key": "bench"}))
            r.raise_for_status()
            returned = time.perf_counter()
            found_ms, r = timed(lambda: client.post("/search", json={"image_base64": data, "k": 1}))
            top = r.json()["results"][0]["product_id"]
            report["add_item"] = {"add_ms": round(add_ms, 1), "search_after_add_ms": round(found_ms, 1),
                                  "found_after_ms": round((time.perf_counter() - returned) * 1000, 1),
                                  "found": top == "BENCH-NEW"}
        if args.rewriter:
            service.config = replace(service.config, rewriter=args.rewriter)
            with TestClient(create_app(service.config, service)) as client:
                token = uuid.uuid4().hex[:6]
                fresh = [f"{t} {token}" for t in texts[:20]]  # in no cache yet: the LLM runs for each
                first = [timed(lambda: client.post("/search", json={"text": t}))[0] for t in fresh]
                again = [timed(lambda: client.post("/search", json={"text": t}))[0] for t in fresh]
                report["rewrite"] = {"model": args.rewriter, "first": summary(first), "repeated": summary(again),
                                     "without_rewriting": report["json"]}
    for name, value in report.items():
        print(f"{name:<14} {value}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        print(f"report: {args.out}")


if __name__ == "__main__":
    main()
