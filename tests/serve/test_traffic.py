"""Serving under real traffic: concurrent queries share forward passes, batch requests, pages of results, ad-hoc
vectors, Prometheus metrics and request ids."""
import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from prodlens.serve import SearchService, ServeConfig, create_app
from prodlens.serve.batching import MicroBatcher

from .test_app import jpeg_bytes


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service.config, service)) as c:
        yield c


def test_concurrent_queries_share_a_forward_pass_and_get_their_own_answers(service, indexed):
    catalog, _, _ = indexed
    texts = [f"{p.title} {n}" for n, p in enumerate(catalog.products.values())] * 4
    alone = [service.model.embed_query([], t, "page") for t in texts]
    sizes = []
    first_batch = []
    entered, gate = threading.Event(), threading.Event()

    def embed(queries, domain):
        if not entered.is_set():
            first_batch.append(len(queries))
            entered.set()
            gate.wait()  # hold the first pass until every other request is queued, however slow this machine is
        return service._embed_batch(queries, domain)

    batcher = MicroBatcher(embed, max_batch=64, max_wait_ms=1.0, on_batch=lambda n, s: sizes.append(n))
    with ThreadPoolExecutor(len(texts)) as pool:
        futures = [pool.submit(batcher.submit, ([], t), "page") for t in texts]
        entered.wait()
        while batcher._queue.qsize() < len(texts) - first_batch[0]:
            threading.Event().wait(0.01)
        gate.set()
        together = [f.result() for f in futures]
    assert sizes == [first_batch[0], len(texts) - first_batch[0]]  # the queued requests: one forward pass
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_one_bad_query_in_a_batch_does_not_fail_its_neighbours(service):
    def embed(queries, domain):
        if any(t == "bad" for _, t in queries):
            raise ValueError("this query cannot be embedded")
        return service._embed_batch(queries, domain)

    batcher = MicroBatcher(embed, max_batch=8, max_wait_ms=50.0)
    with ThreadPoolExecutor(3) as pool:
        good = [pool.submit(batcher.submit, ([], t), "page") for t in ("oat milk", "apple juice")]
        bad = pool.submit(batcher.submit, ([], "bad"), "page")
        assert all(f.result().shape == (service.index.dim,) for f in good)
        with pytest.raises(ValueError, match="cannot be embedded"):
            bad.result()


def test_a_request_alone_does_not_wait_for_others():
    import time

    batcher = MicroBatcher(lambda payloads, key: [p * 2 for p in payloads], max_batch=8, max_wait_ms=120_000)
    start = time.monotonic()
    assert [batcher.submit(n) for n in range(3)] == [0, 2, 4]
    assert time.monotonic() - start < 60  # each waited for nobody, not for the two-minute bound


def test_a_failing_metrics_hook_neither_fails_the_answers_nor_ends_the_worker():
    calls = []

    def on_batch(size, seconds):
        calls.append(size)
        if len(calls) == 1:
            raise RuntimeError("metrics backend down")

    batcher = MicroBatcher(lambda payloads, key: [p + 1 for p in payloads], max_batch=4, on_batch=on_batch)
    assert batcher.submit(1) == 2  # its answer was ready before the hook failed
    assert batcher.submit(2) == 3  # the worker thread survived: later requests are answered
    assert batcher._worker.is_alive()


def test_a_stuck_batch_times_out_its_requests_and_later_ones_are_served():
    release = threading.Event()

    def run(payloads, key):
        if "stuck" in payloads:
            release.wait()  # a model that hangs until released
        return [f"ok {p}" for p in payloads]

    batcher = MicroBatcher(run, max_batch=1, timeout_s=0.2)
    with pytest.raises(TimeoutError, match="within 0.2 s"):
        batcher.submit("stuck")
    release.set()
    assert batcher.submit("next") == "ok next"


def test_pages_of_results_follow_each_other(client):
    whole = client.post("/search", data={"text": "juice", "k": "6", "per_product": "false"}).json()
    assert whole["offset"] == 0 and len(whole["results"]) == 6
    first = client.post("/search", data={"text": "juice", "k": "3", "per_product": "false"}).json()
    second = client.post("/search", data={"text": "juice", "k": "3", "offset": first["next_offset"],
                                          "per_product": "false"}).json()
    assert first["next_offset"] == 3 and second["offset"] == 3
    assert [h["sample_id"] for h in first["results"] + second["results"]] == \
        [h["sample_id"] for h in whole["results"]]
    last = client.post("/search", data={"text": "juice", "k": "5", "offset": "15", "per_product": "false"}).json()
    assert len(last["results"]) == 3 and last["next_offset"] is None  # 18 samples indexed
    deep = client.post("/search", data={"text": "juice", "k": "10", "offset": "995"})
    assert deep.status_code == 422 and "offset" in deep.json()["detail"]


def test_a_batch_request_answers_each_query_in_place(client, indexed):
    catalog, _, _ = indexed
    page = catalog.by_domain("page")[1]
    photo = base64.b64encode(jpeg_bytes(catalog.path(page.images[0]))).decode()
    product = catalog.products[page.product_id]
    r = client.post("/search/batch", json={"queries": [
        {"text": product.title, "k": 2, "domains": ["page"]},
        {"image_base64": photo, "k": 1, "domains": ["page"]},
        {"text": ""},
        {"sample_id": page.sample_id, "k": 2},
        {"image_base64": "not base64!"},
    ]})
    assert r.status_code == 200, r.text
    answers = r.json()["responses"]
    assert len(answers) == 5
    assert answers[0]["status"] == 200 and answers[0]["results"][0]["product_id"] == page.product_id
    single = client.post("/search", data={"text": product.title, "k": "2", "domain": "page"}).json()
    assert [h["score"] for h in answers[0]["results"]] == pytest.approx([h["score"] for h in single["results"]],
                                                                          abs=1e-5)
    assert answers[1]["query"]["kind"] == "image" and answers[1]["results"][0]["product_id"] == page.product_id
    assert answers[2]["status"] == 400 and "nothing to search with" in answers[2]["detail"]
    assert answers[3]["query"]["product_id"] == page.product_id
    assert answers[4]["status"] == 422 and "query 4" in answers[4]["detail"]
    too_many = client.post("/search/batch", json={"queries": [{"text": "x"}] * 65})
    assert too_many.status_code == 422 and "1 to 64" in too_many.json()["detail"]


def test_embed_gives_the_vector_the_search_uses(client, service):
    r = client.post("/embed", data={"text": "apple juice", "domain": "page"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dim"] == service.index.dim == len(body["vector"]) and body["model_id"] == service.index.model_id
    expected = service.model.embed_query([], "apple juice", "page")
    np.testing.assert_allclose(body["vector"], expected, atol=1e-5)
    assert client.post("/embed", data={}).status_code == 400


def test_metrics_count_requests_batches_and_the_index(client, service):
    client.post("/search", data={"text": "milk"})
    client.post("/search", data={"text": ""})
    text = client.get("/metrics").text
    assert 'prodlens_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'prodlens_requests_total{method="POST",route="/search",status="400"}' in text
    assert "prodlens_request_seconds_bucket" in text and "prodlens_batch_size_count" in text
    assert f"prodlens_index_items {float(len(service.index))}" in text
    assert 'prodlens_queries_total{kind="text"}' in text


def test_every_response_carries_a_request_id(client):
    mine = client.post("/search", data={"text": "milk"}, headers={"X-Request-ID": "checkout-42"})
    assert mine.headers["X-Request-ID"] == "checkout-42"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 16 and generated != client.get("/health").headers["X-Request-ID"]
    hostile = client.get("/health", headers={"X-Request-ID": "a\tb" * 40}).headers["X-Request-ID"]
    assert "\t" not in hostile and len(hostile) == 16


def test_a_serialised_service_answers_the_same(indexed, service):
    _, index_dir, cache_dir = indexed
    serial = SearchService(ServeConfig(str(index_dir), cache_dir=str(cache_dir), max_batch=1))
    a = serial.search(text="oat milk", k=5)
    b = service.search(text="oat milk", k=5)
    assert [h.sample_id for h in a.hits] == [h.sample_id for h in b.hits]


def test_the_command_line_answers_many_queries_with_one_model_load(indexed):
    import json

    from typer.testing import CliRunner

    from prodlens.cli import app

    catalog, index_dir, cache_dir = indexed
    titles = [catalog.products[p].title for p in sorted(catalog.products)[:3]]
    result = CliRunner().invoke(app, ["index", "search", str(index_dir), *[a for t in titles for a in ("--text", t)],
                                      "-k", "1", "--domain", "page", "--json"],
                                env={"PRODLENS_CACHE": str(cache_dir)})
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [a["results"][0]["product_id"] for a in answers] == sorted(catalog.products)[:3]


def test_a_service_over_milvus_answers_as_over_faiss(indexed, service, tmp_path):
    from prodlens import api
    from prodlens.embed import EmbedConfig, FeatureCache
    from prodlens.index import IndexConfig

    catalog, _, cache_dir = indexed
    api.index_catalog(catalog, tmp_path / "milvus-index", ("page", "video", "live"), EmbedConfig(frames=4),
                      index_config=IndexConfig(store="milvus-lite"), cache=FeatureCache(cache_dir), progress=False)
    milvus = SearchService(ServeConfig(str(tmp_path / "milvus-index"), cache_dir=str(cache_dir)))
    assert milvus.stats()["kind"] == "milvus" and len(milvus.index) == len(service.index)
    for text in ("juice", catalog.products[sorted(catalog.products)[3]].title):
        for domains in (None, ["live"]):
            a = service.search(text=text, k=5, domains=domains, per_product=False)
            b = milvus.search(text=text, k=5, domains=domains, per_product=False)
            assert [h.sample_id for h in a.hits] == [h.sample_id for h in b.hits]


def test_frames_prepared_in_the_request_thread_embed_to_the_same_vector(service, indexed):
    from PIL import Image

    catalog, _, _ = indexed
    photo = Image.open(catalog.path(catalog.by_domain("page")[0].images[0])).convert("RGB").resize((301, 517))
    prepared = service.model.prepare_query_frames([photo])
    assert prepared[0].size == (224, 224)  # the resize and crop left to the request thread
    np.testing.assert_array_equal(service.model.embed_query(prepared, "", "live"),
                                  service.model.embed_query([photo], "", "live"))


def test_a_query_stuck_behind_a_hung_model_gets_503_and_the_server_recovers(service, monkeypatch):
    release = threading.Event()
    embed = service._embed_batch

    def hung(queries, domain):
        if any(text == "hang" for _, text, *_ in queries):
            release.wait()
        return embed(queries, domain)

    monkeypatch.setattr(service.batcher, "_run_batch", hung)
    monkeypatch.setattr(service.batcher, "timeout", 0.3)
    with TestClient(create_app(service.config, service)) as c:
        stuck = c.post("/search", data={"text": "hang", "k": "3"})
        assert stuck.status_code == 503 and "no result within" in stuck.json()["detail"]
        assert stuck.headers.get("retry-after") == "1"
        release.set()
        assert c.post("/search", data={"text": "juice", "k": "3"}).status_code == 200
