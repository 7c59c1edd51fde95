"""The README's quick start runs as written, on a generated catalogue in a fresh working directory."""
import os
import re
import shutil
from pathlib import Path

from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start (Python)"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quick_start_block_runs_and_finds_the_product(tmp_path, embedder, monkeypatch):
    generate_demo_catalog(tmp_path / "my-catalogue", n_products=4, videos_per_product=1, lives_per_product=1,
                          progress=False)
    page = load_folder(tmp_path / "my-catalogue").by_domain("page")[1]
    shutil.copy(tmp_path / "my-catalogue" / page.images[0], tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRODLENS_CACHE", str(tmp_path / "cache"))
    scope: dict = {}
    exec(compile(quick_start(), "README.md quick start", "exec"), scope)
    hits = scope["hits"]
    assert len(hits) == 4 and hits[0].product_id == page.product_id
    product = load_folder(tmp_path / "my-catalogue").products[page.product_id]
    # what the web page and the API show: the index knows each product's title, category and thumbnail
    assert (hits[0].title, hits[0].category) == (page.title or product.title, product.category)
    assert hits[0].thumbnail and (tmp_path / "my-index" / "thumbs" / hits[0].thumbnail).exists()
    assert (tmp_path / "my-index" / "CURRENT").exists() and os.listdir(tmp_path / "my-index")
