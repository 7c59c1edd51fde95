"""A running service picks up `index remove` / `index add` saved by another process, and refuses a version that
another model built."""
import json
import shutil

from fastapi.testclient import TestClient

from prodlens.index import ProductIndex
from prodlens.serve import SearchService, ServeConfig, create_app


def test_service_serves_the_newest_index_version(indexed, tmp_path):
    catalog, index_dir, cache_dir = indexed
    live_copy = tmp_path / "index"
    shutil.copytree(index_dir, live_copy)
    service = SearchService(ServeConfig(str(live_copy), cache_dir=str(cache_dir), reload_seconds=0))
    product = catalog.products[sorted(catalog.products)[0]]
    with TestClient(create_app(service.config, service)) as client:
        def products_found():
            r = client.post("/search", data={"text": product.title, "k": "20", "per_product": "false"})
            assert r.status_code == 200, r.text
            return {h["product_id"] for h in r.json()["results"]}

        assert product.product_id in products_found()
        editor = ProductIndex.open(live_copy)  # what `prodlens index remove` does, in this process
        removed = editor.remove(product_ids=[product.product_id])
        editor.save()
        assert removed == 3 and product.product_id not in products_found()
        stats = client.get("/stats").json()
        assert stats["reloads"] == 1 and stats["items"] == 15 and stats["reload_error"] is None

        # a version written by a different model is refused; the last good one keeps serving
        editor = ProductIndex.open(live_copy)
        editor.remove(sample_ids=[catalog.by_domain("video")[1].sample_id])
        version_dir = editor.save()
        record = json.loads((version_dir / "index.json").read_text())
        record["model_id"] = "some-other-model"
        (version_dir / "index.json").write_text(json.dumps(record))
        assert product.product_id not in products_found()
        stats = client.get("/stats").json()
        assert stats["items"] == 15 and "restart the server" in stats["reload_error"]


def test_reload_can_be_switched_off(indexed, tmp_path):
    catalog, index_dir, cache_dir = indexed
    shutil.copytree(index_dir, tmp_path / "index")
    service = SearchService(ServeConfig(str(tmp_path / "index"), cache_dir=str(cache_dir), reload_seconds=None))
    editor = ProductIndex.open(tmp_path / "index")
    editor.remove(product_ids=[sorted(catalog.products)[0]])
    editor.save()
    service.search(text="anything", k=3)
    assert len(service.index) == 18 and service.reloads == 0
    assert service.refresh_index(force=True) and len(service.index) == 15


def test_stats_report_the_version_a_query_would_be_served_from(indexed, tmp_path):
    catalog, index_dir, cache_dir = indexed
    shutil.copytree(index_dir, tmp_path / "index")
    service = SearchService(ServeConfig(str(tmp_path / "index"), cache_dir=str(cache_dir), reload_seconds=3600))
    with TestClient(create_app(service.config, service)) as client:
        before = client.get("/stats").json()
        editor = ProductIndex.open(tmp_path / "index")
        editor.remove(product_ids=[sorted(catalog.products)[0]])
        editor.save()
        after = client.get("/stats").json()
    assert after["version"] == before["version"] + 1 and after["items"] == before["items"] - 3
