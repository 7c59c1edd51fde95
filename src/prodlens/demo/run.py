"""`prodlens demo`: generate the built-in catalogue, validate it, embed it, evaluate all six directions."""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from .. import api
from ..catalog import load_catalog, validate_catalog
from ..evaluate import print_results
from .synth import generate_demo_catalog


def run_demo(out: Path, n_products: int = 36, seed: int = 0, cache_dir: Path | None = None,
             console: Console | None = None):
    console = console or Console()
    start = time.time()
    catalog_dir = out / "catalog"
    if (catalog_dir / "products.csv").exists():
        console.print(f"using the catalogue already generated in {catalog_dir}")
    else:
        console.rule("1/3 generating a tri-domain catalogue")
        generate_demo_catalog(catalog_dir, n_products=n_products, seed=seed)
    catalog = load_catalog("folder", catalog_dir)
    catalog.name = "demo"
    bad = validate_catalog(catalog, check_media=True)
    s = catalog.summary()
    console.print(f"{s['products']} products: {s['page']} product pages, {s['video']} short videos, "
                  f"{s['live']} live clips; {len(bad)} bad records")
    console.rule("2/3 embedding with pretrained encoders (zero-shot)")
    cache = api.open_cache(cache_dir or out / "cache")
    console.rule("3/3 evaluating cross-domain retrieval")
    result = api.evaluate_catalog("folder", catalog_dir, catalog=catalog, cache=cache,
                                  page_variants=["image", "text", "image+text"], report_dir=out / "report",
                                  json_out=out / "report" / "metrics.json")
    print_results(result, console)
    console.print(f"report: {out / 'report' / 'report.md'}   ({time.time() - start:.0f} s)")
    return result
