"""A small generated catalogue, indexed across all three domains with the real pretrained encoders."""
import pytest

from prodlens import api
from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog
from prodlens.embed import EmbedConfig, FeatureCache
from prodlens.serve import SearchService, ServeConfig


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
