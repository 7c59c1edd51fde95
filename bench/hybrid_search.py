"""Hybrid (BM25 + vectors, reciprocal rank fusion) vs vector-only text search, in one run, over HTTP, on the real
Grocery Store product pages (81 products) indexed with the default zero-shot model.

Three query families, none used to choose anything (RRF's k = 60 is the published constant):
- `shopper`: bench/data/grocery_shopper_queries.tsv, 81 queries written like a shopper types them, one per product
  ("tropicana mandarin", "courgette", "lactose free milk", "green sour apples for baking");
- `exact name`: the product's name as printed on the pack ("bravo apple juice");
- `two words`: its first two words ("god morgon", "arla ecological": often ambiguous on purpose).
Reports top-1 / top-5 accuracy (the right product first / in the first five, one hit per product) and MRR@10.

    python bench/hybrid_search.py [--root ../shared/data/grocery-store] [--out report.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402


def families(products: dict) -> dict[str, list[tuple[str, str]]]:
    with open(HERE / "data" / "grocery_shopper_queries.tsv", newline="") as f:
        shopper = [(r["query"], r["product_id"]) for r in csv.DictReader(f, delimiter="\t")]
    names = {pid: pid.replace("-", " ").lower() for pid in products}
    return {"shopper": shopper,
            "exact name": [(name, pid) for pid, name in names.items()],
            "two words": [(" ".join(name.split()[:2]), pid) for pid, name in names.items()]}


def score(client, queries: list[tuple[str, str]]) -> dict:
    top1 = top5 = rr = 0.0
    for text, pid in queries:
        r = client.post("/search", data={"text": text, "k": "10", "domain": "page"})
        r.raise_for_status()
        ranked = [h["product_id"] for h in r.json()["results"]]
        top1 += ranked[:1] == [pid]
        top5 += pid in ranked[:5]
        rr += 1.0 / (ranked.index(pid) + 1) if pid in ranked else 0.0
    n = len(queries)
    return {"queries": n, "top1": top1 / n, "top5": top5 / n, "mrr10": rr / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None, help="grocery-store directory (default: ../shared)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from prodlens import api
    from prodlens.catalog import load_catalog
    from prodlens.embed import FeatureCache
    from prodlens.serve import SearchService, ServeConfig, create_app

    root = grocery_root(args.root)
    console = Console(width=120)
    catalog = load_catalog("grocery", root, split="val")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        api.index_catalog(catalog, Path(tmp) / "index", ("page",), cache=FeatureCache(Path(tmp) / "cache"),
                          progress=False)
        service = SearchService(ServeConfig(str(Path(tmp) / "index"), cache_dir=str(Path(tmp) / "cache")))
        queries = families(catalog.products)
        for retrieval in ("vector", "hybrid"):
            service.config = replace(service.config, retrieval=retrieval)
            with TestClient(create_app(service.config, service)) as client:
                for family, qs in queries.items():
                    rows.append({"retrieval": retrieval, "family": family, **score(client, qs)})
    table = Table(title="Text search on the Grocery pages over HTTP (default zero-shot index; one hit per product)",
                  title_justify="left")
    for col in ("queries", "family", "n", "top-1", "top-5", "MRR@10"):
        table.add_column(col, justify="left" if col in ("queries", "family") else "right")
    for r in rows:
        table.add_row(r["retrieval"], r["family"], str(r["queries"]), f"{r['top1']:.3f}", f"{r['top5']:.3f}",
                      f"{r['mrr10']:.3f}")
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
        console.print(f"report: {args.out}", markup=False)


if __name__ == "__main__":
    main()
