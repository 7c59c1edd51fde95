"""A small generated catalogue, indexed across all three domains with the real pretrained encoders; headless
Chromium for the web page's tests."""
import shutil

import pytest

from prodlens import api
from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog
from prodlens.embed import EmbedConfig, FeatureCache
from prodlens.serve import SearchService, ServeConfig
from tests.helpers import importable, require

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def indexed(tmp_path_factory):
    """(catalogue, index directory, cache directory)."""
    base = tmp_path_factory.mktemp("serve")
    root = generate_demo_catalog(base / "catalog", n_products=6, videos_per_product=1, lives_per_product=1,
                                 progress=False)
    catalog = load_folder(root)
    api.index_catalog(catalog, base / "index", ("page", "video", "live"), EmbedConfig(frames=4),
                      cache=FeatureCache(base / "cache"), progress=False)
    return catalog, base / "index", base / "cache"


@pytest.fixture(scope="session")
def service(indexed):
    _, index_dir, cache_dir = indexed
    return SearchService(ServeConfig(str(index_dir), cache_dir=str(cache_dir), max_upload_mb=2))


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM is not None, "chromium", "apt-get install chromium; `make test` installs it as root")
    require(importable("playwright.sync_api"), "playwright", "pip install playwright")
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
