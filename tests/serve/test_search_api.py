"""The JSON search API as users of Marqo and Elasticsearch expect it: strict fields, comparable scores, totals and
reasons, retrieval per request, documents over HTTP behind the write key, several indexes, a read key."""
import base64
import io
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from prodlens.serve import SearchService, ServeConfig, create_app


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service.config, service)) as c:
        yield c


@pytest.fixture(scope="module")
def writable(indexed, tmp_path_factory):
    """A server on a copy of the index, with a write key and a second index (the original) beside it."""
    _, index_dir, cache_dir = indexed
    copy = tmp_path_factory.mktemp("writable") / "index"
    shutil.copytree(index_dir, copy)
    config = ServeConfig(str(copy), cache_dir=str(cache_dir), api_key="secret", read_key="reader",
                         indexes={"original": str(index_dir)})
    with TestClient(create_app(config, SearchService(config))) as c:
        deadline = time.monotonic() + 300
        while c.get("/indexes", headers={"X-API-Key": "reader"}).json()["indexes"][1]["status"] == "loading":
            assert time.monotonic() < deadline, "the second index never loaded"
            time.sleep(0.2)
        yield c


def b64(path) -> str:
    img = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def test_a_json_search_answers_with_relevance_total_and_the_retrieval_used(client, indexed):
    catalog, _, _ = indexed
    product = catalog.products[sorted(catalog.products)[1]]
    r = client.post("/search", json={"text": product.title, "k": 3, "domains": ["page"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["product_id"] == product.product_id
    assert body["total"] == len(catalog.products) and body["total_relation"] == "eq" and body["reason"] is None
    scores = [h["score"] for h in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert body["query"]["retrieval"] == "hybrid"
    for retrieval in ("vector", "lexical"):
        again = client.post("/search", json={"text": product.title, "k": 3, "retrieval": retrieval}).json()
        assert again["query"]["retrieval"] == retrieval and again["results"][0]["product_id"] == product.product_id
    # the form path (the page's) gives the same answer
    form = client.post("/search", data={"text": product.title, "k": "3", "domain": "page"}).json()
    assert [h["sample_id"] for h in form["results"]] == [h["sample_id"] for h in body["results"]]


def test_unknown_fields_are_refused_by_name_never_ignored(client):
    r = client.post("/search", json={"text": "juice", "category": "Juice"})
    assert r.status_code == 422 and "'category'" in r.json()["detail"] and "categories" in r.json()["detail"]
    r = client.post("/search/batch", json={"queries": [{"text": "juice", "domain": "video"}]})
    assert r.status_code == 422 and "queries.0.domain" in r.json()["detail"] and "domains" in r.json()["detail"]
    r = client.post("/search", data={"text": "juice", "colour": "red"})
    assert r.status_code == 422 and "'colour'" in r.json()["detail"]
    r = client.post("/search", json={"text": "juice", "retrieval": "semantic"})
    assert r.status_code == 422 and "retrieval" in r.json()["detail"]


def test_categories_are_case_insensitive_and_honoured_in_a_batch(client, service):
    known = sorted(service.index.category_products())
    target = known[0]
    r = client.post("/search/batch", json={"queries": [{"text": "product", "k": 20, "categories": [target.upper()]},
                                                       {"text": "product", "categories": ["no such thing"]}]})
    first, second = r.json()["responses"]
    assert first["results"] and {h["category"] for h in first["results"]} == {target}
    assert second["status"] == 422 and all(c in second["detail"] for c in known)  # every category, not 20


def test_every_empty_answer_says_why(client, service):
    product = next(iter(service.index.items.values()))
    none = client.post("/search", json={"text": product.title, "min_score": 1.0}).json()
    assert none["results"] == [] and none["total"] == 0 and "min_score" in none["reason"]
    past = client.post("/search", json={"text": product.title, "offset": 90, "k": 10}).json()
    assert past["results"] == [] and "past the last" in past["reason"]
    sure = client.post("/search", json={"text": product.title, "min_score": 0.3, "k": 50}).json()
    assert all(h["score"] >= 0.3 for h in sure["results"]) and sure["total"] == len(sure["results"])


def test_a_product_added_over_http_is_found_by_its_photo_within_a_second(writable, indexed):
    catalog, _, _ = indexed
    source = catalog.by_domain("page")[3]
    photo = b64(catalog.path(source.images[0]))
    item = {"product_id": "NEW-1", "title": "Nordic Lingonberry Jam", "category": "Jam",
            "attributes": {"brand": "Skogsbär", "price": 4.5}, "image_base64": photo}
    assert writable.post("/items", json=item).status_code == 401  # the write key, not the read key
    r = writable.post("/items", json=item, headers={"X-API-Key": "secret"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "created"
    found = writable.post("/search", json={"image_base64": photo, "k": 3, "domains": ["page"],
                                           "filters": {"brand": "skogsbär"}}, headers={"X-API-Key": "reader"})
    # found by the very next request: no reload to wait for (bench/search_latency.py times it)
    hit = found.json()["results"][0]
    assert hit["product_id"] == "NEW-1" and hit["attributes"] == {"brand": "Skogsbär", "price": "4.5"}
    assert writable.get("/items/NEW-1", headers={"X-API-Key": "reader"}).json()["category"] == "Jam"

    patched = writable.patch("/items/NEW-1", json={"attributes": {"price": 3.0}}, headers={"X-API-Key": "secret"})
    assert patched.status_code == 200, patched.text
    cheap = writable.post("/search", json={"text": "jam", "filters": {"price": {"lt": 4}}},
                          headers={"X-API-Key": "reader"}).json()
    assert [h["product_id"] for h in cheap["results"]] == ["NEW-1"]
    retitled = writable.patch("/items/NEW-1", json={"title": "Other"}, headers={"X-API-Key": "secret"})
    assert retitled.status_code == 422 and "image_base64" in retitled.json()["detail"]

    # a catalogue product posted again: its page is replaced (one page sample, the new one), its clips stay
    old = writable.get(f"/items/{source.product_id}", headers={"X-API-Key": "reader"}).json()
    replaced = writable.post("/items", json={**item, "product_id": source.product_id},
                             headers={"X-API-Key": "secret"}).json()
    assert replaced["result"] == "updated"
    new = writable.get(f"/items/{source.product_id}", headers={"X-API-Key": "reader"}).json()
    assert [s["sample_id"] for s in new["samples"] if s["domain"] == "page"] == [f"page/{source.product_id}/api"]
    assert [s for s in new["samples"] if s["domain"] != "page"] == [s for s in old["samples"] if s["domain"] != "page"]
    assert new["title"] == "Nordic Lingonberry Jam"

    assert writable.delete("/items/NEW-1", headers={"X-API-Key": "secret"}).json()["result"] == "deleted"
    assert writable.get("/items/NEW-1", headers={"X-API-Key": "reader"}).status_code == 404
    bad = writable.post("/items", json={**item, "product_id": "../etc"}, headers={"X-API-Key": "secret"})
    assert bad.status_code == 422 and "product_id" in bad.json()["detail"]


def test_several_indexes_a_read_key_and_one_schema_listing_it_all(writable):
    assert writable.post("/search", json={"text": "juice"}).status_code == 401
    assert writable.get("/health").status_code == 200  # health stays open for load balancers
    key = {"X-API-Key": "reader"}
    listed = writable.get("/indexes", headers=key).json()["indexes"]
    assert [i["name"] for i in listed] == ["default", "original"] and listed[1]["status"] == "ok"
    r = writable.post("/indexes/original/search", json={"text": "juice", "k": 2}, headers=key)
    assert r.status_code == 200 and len(r.json()["results"]) == 2
    assert all(h["thumbnail"] is None or h["thumbnail"].startswith("/indexes/original/thumbnails/")
               for h in r.json()["results"])
    assert writable.post("/indexes/nope/search", json={"text": "x"}, headers=key).status_code == 404
    schema = writable.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/search", "/search/batch", "/items", "/items/{product_id}", "/indexes/{name}/search",
            "/indexes/{name}/items"} <= set(paths)
    content = paths["/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    assert "name" not in {p["name"] for p in paths["/search"]["post"].get("parameters", [])}


def test_a_server_that_rewrites_queries_asks_once_per_query(indexed, service):
    from tests.text.test_rewrite import ChatServer

    catalog, index_dir, cache_dir = indexed
    product = catalog.products[sorted(catalog.products)[4]]
    llm = ChatServer(product.title)  # an OpenAI-compatible endpoint that rewrites every query into this title
    try:
        config = ServeConfig(str(index_dir), cache_dir=str(cache_dir), rewriter=f"{llm.url}::any")
        with TestClient(create_app(config, SearchService(config))) as c:
            first = c.post("/search", json={"text": "the thing from the advert", "k": 3}).json()
            assert first["query"]["rewrite"] == product.title
            assert first["results"][0]["product_id"] == product.product_id
            again = c.post("/search", json={"text": "the thing from the advert", "k": 3}).json()
            assert again["results"] == first["results"] and len(llm.requests) == 1  # cached: no second ask
            vector = c.post("/search", json={"text": "the thing from the advert", "retrieval": "vector"}).json()
            assert "rewrite" not in vector["query"]  # rewriting is part of hybrid retrieval only
    finally:
        llm.close()
