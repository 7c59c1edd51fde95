"""The index directory: versions swapped atomically, incremental edits, model identity, thumbnails — with the
vectors in FAISS files and in Milvus (Milvus Lite, the same client and API as a Milvus server)."""
import numpy as np
import pytest

from prodlens.embed import Embeddings
from prodlens.errors import ProdlensError
from prodlens.index import IndexConfig, IndexInfo, ModelMismatch, ProductIndex
from prodlens.index import store as store_module


def embeddings(n_products=20, per_product=3, dim=16, seed=0, model_id="m1", prefix=""):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_products, dim))
    sids, pids, doms, vecs = [], [], [], []
    for p in range(n_products):
        for j in range(per_product):
            sids.append(f"{prefix}s{p}-{j}")
            pids.append(f"p{p}")
            doms.append(["page", "video", "live"][j % 3])
            vecs.append(centres[p] + 0.1 * rng.normal(size=dim))
    x = np.array(vecs, np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    meta = {"model": f"test model {model_id}", "model_id": model_id, "signature": {"kind": "test", "id": model_id}}
    return Embeddings(sids, pids, doms, [None] * len(sids), x, meta)


STORES = ["faiss", "milvus-lite"]


@pytest.fixture(params=STORES)
def store(request):
    return request.param


def info_for(emb):
    return IndexInfo(titles={s: f"title of {p}" for s, p in zip(emb.sample_ids, emb.product_ids)},
                     categories={s: ("even" if int(p[1:]) % 2 == 0 else "odd") for s, p in
                                 zip(emb.sample_ids, emb.product_ids)},
                     thumbnails={emb.sample_ids[0]: b"\xff\xd8fake-jpeg"})


@pytest.mark.parametrize("store,kind", [("faiss", "flat"), ("faiss", "hnsw"), ("faiss", "ivfpq"),
                                        ("milvus-lite", "flat"), ("milvus-lite", "hnsw")])
def test_build_save_open_search_and_edit(tmp_path, store, kind):
    emb = embeddings()
    index = ProductIndex.create(tmp_path / "idx", emb, info_for(emb), IndexConfig(store=store, kind=kind))
    index.save()
    opened = ProductIndex.open(tmp_path / "idx")
    assert len(opened) == len(emb) and opened.model_id == "m1"
    assert opened.record["kind"] == (kind if store == "faiss" else "milvus")
    query = emb.vectors[4]  # a sample of product p1
    hits = opened.search(query, k=5)
    assert hits[0].product_id == "p1" and len({h.product_id for h in hits}) == 5  # one hit per product
    assert hits[0].title == "title of p1" and hits[0].category == "odd"
    assert all(h.domain == "page" for h in opened.search(query, k=5, domains=["page"]))
    assert all(h.category == "even" for h in opened.search(query, k=5, categories=["even"]))
    all_samples = opened.search(query, k=3, per_product=False)
    assert [h.product_id for h in all_samples] == ["p1"] * 3
    thumb = opened.item(emb.sample_ids[0]).thumbnail
    assert (tmp_path / "idx" / "thumbs" / thumb).read_bytes() == b"\xff\xd8fake-jpeg"

    # incremental: remove a product, add new samples, replace an existing one
    assert opened.remove(product_ids=["p1"]) == 3
    new = embeddings(n_products=2, seed=5, prefix="new-")
    added, replaced = opened.add(new)
    assert (added, replaced) == (6, 0)
    again = embeddings(n_products=1, seed=9, prefix="new-")
    assert opened.add(again) == (0, 3)
    opened.save()
    final = ProductIndex.open(tmp_path / "idx")
    assert len(final) == len(emb) - 3 + 6
    assert all(h.product_id != "p1" or h.sample_id.startswith("new-") for h in final.search(query, k=10))
    stored = final.vector_of("new-s0-0")  # exact for flat / hnsw, quantised for ivfpq
    assert kind == "ivfpq" or np.allclose(stored, again.vectors[0], atol=1e-5)
    assert final.search(stored, 1)[0].sample_id.startswith("new-s0-")


def test_hnsw_removals_are_hidden_then_rebuilt_away(tmp_path):
    emb = embeddings(n_products=30)
    index = ProductIndex.create(tmp_path / "idx", emb, config=IndexConfig(kind="hnsw"))
    index.remove(product_ids=["p0", "p1"])
    assert index.vectors.tombstones and not any(h.product_id in ("p0", "p1") for h in index.search(emb.vectors[0], 10))
    index.save()
    assert ProductIndex.open(tmp_path / "idx").vectors.tombstones == index.vectors.tombstones
    index.remove(product_ids=[f"p{i}" for i in range(2, 12)])  # over 20% removed: the next save rebuilds
    index.save()
    reopened = ProductIndex.open(tmp_path / "idx")
    assert not reopened.vectors.tombstones and len(reopened) == 18 * 3 and reopened.vectors.index.ntotal == 18 * 3


def test_a_crash_while_saving_leaves_the_previous_version(tmp_path, store, monkeypatch):
    emb = embeddings()
    index = ProductIndex.create(tmp_path / "idx", emb, config=IndexConfig(store=store))
    index.save()
    index.remove(product_ids=["p3"])
    calls = []

    def crash_on_second_file(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        with open(path, "wb") as f:
            f.write(data)

    monkeypatch.setattr(store_module, "_write_synced", crash_on_second_file)
    with pytest.raises(OSError):
        index.save()
    monkeypatch.undo()
    reopened = ProductIndex.open(tmp_path / "idx")
    assert len(reopened) == len(emb) and reopened.record["version"] == 1
    assert not list((tmp_path / "idx").glob(".v*"))  # the half-written version was cleaned up
    index.save()  # the next save works and versions move on
    assert ProductIndex.open(tmp_path / "idx").record["version"] == 2


def test_old_versions_are_pruned(tmp_path, store):
    emb = embeddings()
    index = ProductIndex.create(tmp_path / "idx", emb, config=IndexConfig(store=store))
    for _ in range(4):
        index.save()
    assert sorted(p.name for p in (tmp_path / "idx").glob("v*")) == ["v000003", "v000004"]


def test_vectors_of_another_model_are_refused(tmp_path, store):
    index = ProductIndex.create(tmp_path / "idx", embeddings(model_id="m1"), config=IndexConfig(store=store))
    with pytest.raises(ModelMismatch, match="m2"):
        index.add(embeddings(model_id="m2", prefix="x"))
    with pytest.raises(ModelMismatch):
        index.search(np.ones(16, np.float32) / 4, 3, model_id="m2")
    with pytest.raises(ModelMismatch, match="dimension"):
        index.add(embeddings(dim=8, prefix="y"))


def test_bad_index_directories_are_clear_errors(tmp_path):
    with pytest.raises(ProdlensError, match="not a prodlens index"):
        ProductIndex.open(tmp_path)
    index = ProductIndex.create(tmp_path / "idx", embeddings())
    index.save()
    (tmp_path / "idx" / "v000001" / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(ProdlensError, match="unreadable"):
        ProductIndex.open(tmp_path / "idx")
    with pytest.raises(ProdlensError, match="already holds an index"):
        ProductIndex.create(tmp_path / "idx", embeddings())


def test_a_writer_that_saves_second_keeps_the_first_writers_update(tmp_path, store):
    ProductIndex.create(tmp_path / "idx", embeddings(n_products=2), config=IndexConfig(store=store)).save()
    first, second = ProductIndex.open(tmp_path / "idx"), ProductIndex.open(tmp_path / "idx")  # both read v1
    first.add(embeddings(n_products=3, prefix="a", seed=1), info_for(embeddings(n_products=3, prefix="a")))
    second.add(embeddings(n_products=4, prefix="b", seed=2))
    second.remove(sample_ids=["s0-0"])
    first.save()
    second.save()  # v2 is first's: second's add and remove are replayed on it
    final = ProductIndex.open(tmp_path / "idx")
    ids = {it.sample_id for it in final.items.values()}
    assert len(final) == 6 - 1 + 9 + 12 and final.record["version"] == 3
    assert {"as0-0", "bs3-2", "s1-2"} <= ids and "s0-0" not in ids
    assert final.item("as0-0").title == "title of p0"  # the first writer's side information survives too
    # the replayed index searches its vectors like one built at once
    hit = final.search(final.vector_of("bs3-2"), 1, per_product=False)[0]
    assert hit.sample_id == "bs3-2" and hit.score == pytest.approx(1.0, abs=1e-5)
    second.add(embeddings(n_products=1, prefix="c"))
    second.save()  # no other writer in between: no replay, the version moves on
    assert len(ProductIndex.open(tmp_path / "idx")) == len(final) + 3


def test_two_new_indexes_created_at_once_become_one(tmp_path, store):
    config = IndexConfig(store=store)
    one = ProductIndex.create(tmp_path / "idx", embeddings(n_products=2, prefix="x"), config=config)
    two = ProductIndex.create(tmp_path / "idx", embeddings(n_products=3, prefix="y"), config=config)
    one.save()
    two.save()
    assert len(ProductIndex.open(tmp_path / "idx")) == 6 + 9
    first, racer = (ProductIndex.create(tmp_path / "idx2", embeddings(model_id=m), config=config) for m in ("m1", "m2"))
    first.save()
    with pytest.raises(ModelMismatch):  # a racing writer with another model is refused, not merged
        racer.save()
    assert ProductIndex.open(tmp_path / "idx2").model_id == "m1"


def test_a_writer_waits_for_another_save_and_gives_up_with_a_clear_error(tmp_path, store):
    index = ProductIndex.create(tmp_path / "idx", embeddings(), config=IndexConfig(store=store))
    index.save()
    with index.write_lock():
        with pytest.raises(ProdlensError, match="another process has been writing"):
            ProductIndex.open(tmp_path / "idx").save(lock_timeout=0.2)


def test_a_reader_never_sees_a_pruned_version(tmp_path, store, monkeypatch):
    index = ProductIndex.create(tmp_path / "idx", embeddings(), config=IndexConfig(store=store))
    index.save()
    read = ProductIndex._read
    calls = []

    def racing_read(path, name):  # between reading CURRENT and the files, two writers save and prune that version
        if not calls:
            calls.append(name)
            for n in range(store_module.KEEP_VERSIONS):
                writer = ProductIndex.open(tmp_path / "idx")
                writer.add(embeddings(n_products=1, prefix=f"w{n}"))
                writer.save()
            assert not (tmp_path / "idx" / name).exists()
        return read(path, name)

    monkeypatch.setattr(ProductIndex, "_read", staticmethod(racing_read))
    reader = ProductIndex.open(tmp_path / "idx")
    assert calls == ["v000001"] and reader.record["version"] == 3 and len(reader) == 60 + 6


def test_milvus_and_faiss_flat_give_identical_top_10_on_the_same_vectors(tmp_path):
    emb = embeddings(n_products=400, per_product=3, dim=64, seed=3)  # 1,200 vectors, clustered by product
    info = info_for(emb)
    faiss_index = ProductIndex.create(tmp_path / "faiss", emb, info, IndexConfig(kind="flat"))
    milvus = ProductIndex.create(tmp_path / "milvus", emb, info, IndexConfig(store="milvus-lite", kind="flat"))
    milvus.save()
    milvus = ProductIndex.open(tmp_path / "milvus")
    queries = np.random.default_rng(7).normal(size=(40, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for q in queries:
        for kwargs in ({}, {"per_product": False}, {"domains": ["live"]}, {"categories": ["odd"], "per_product": False}):
            a = [h.sample_id for h in faiss_index.search(q, 10, **kwargs)]
            b = [h.sample_id for h in milvus.search(q, 10, **kwargs)]
            assert a == b, kwargs


def with_attributes(emb):
    info = info_for(emb)
    for s, p in zip(emb.sample_ids, emb.product_ids):
        n = int(p[1:])
        info.attributes[s] = {"brand": ["Arla", "Garant", "Oatly"][n % 3], "price": str(5 + n)}
    return info


def test_attribute_filters_are_pushed_into_the_vector_search_and_saved(tmp_path, store):
    from prodlens.index.filters import FilterError, parse_filters

    emb = embeddings()
    index = ProductIndex.create(tmp_path / "idx", emb, with_attributes(emb), IndexConfig(store=store))
    index.save()
    opened = ProductIndex.open(tmp_path / "idx")
    assert opened.attribute_names() == {"brand", "price"}
    known = opened.attribute_names()
    query = emb.vectors[4]  # product p1 (Garant, price 6)
    arla = parse_filters({"brand": "arla"}, known)  # strings match whatever their case
    hits = opened.search(query, k=20, conditions=arla)
    assert hits and all(h.attributes["brand"] == "Arla" for h in hits)
    assert len(hits) == 7  # every Arla product (p0, p3, ... p18), and no other, though the query is Garant's
    cheap = parse_filters({"price": {"gte": 10, "lt": 13}, "brand": ["Arla", "Oatly"]}, known)
    assert sorted(h.product_id for h in opened.search(query, k=20, conditions=cheap)) == ["p5", "p6"]
    found = opened.query({"q": query}, {}, "image", k=2, conditions=cheap)
    assert found.total == 2 and found.total_exact
    nothing = opened.query({"q": query}, {}, "image", conditions=parse_filters({"price": {"gt": 1000}}, known))
    assert nothing.hits == [] and nothing.total == 0 and "filters exclude" in nothing.reason
    with pytest.raises(FilterError, match="unknown filter attribute 'colour'.*brand, price"):
        parse_filters({"colour": "red"}, known)
    with pytest.raises(FilterError, match="gte needs a number"):
        parse_filters({"price": {"gte": "cheap"}}, known)


def test_totals_min_score_and_the_reason_for_no_results(tmp_path):
    emb = embeddings()
    pages = emb.where([d == "page" for d in emb.domains])
    index = ProductIndex.create(tmp_path / "idx", pages, info_for(pages))
    query = pages.vectors[3]
    found = index.query({"q": query}, {}, "image", k=5)
    assert found.total == 20 and found.total_exact and len(found.hits) == 5
    scores = [h.score for h in found.hits]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert found.hits[0].cosine == pytest.approx(1.0, abs=1e-5)
    sure = index.query({"q": query}, {}, "image", k=5, min_score=0.5)
    assert len(sure.hits) == sure.total == 1 and sure.hits[0].product_id == "p3"
    far = np.random.default_rng(7).normal(size=pages.dim)  # a query like none of the products
    far /= np.linalg.norm(far)
    best = index.query({"q": far}, {}, "image", k=1).hits[0].score
    none = index.query({"q": far}, {}, "image", k=5, min_score=min(1.0, best + 1e-6))
    assert none.hits == [] and none.total == 0 and "min_score" in none.reason and f"{best:.3f}" in none.reason
    absent = index.query({"q": query}, {}, "image", domains=["video"])
    assert absent.hits == [] and "no video items" in absent.reason and "page" in absent.reason
    past = index.query({"q": query}, {}, "image", k=5, offset=40)
    assert past.hits == [] and "past the last" in past.reason


def test_a_sample_query_counts_every_other_hit(tmp_path):
    emb = embeddings(n_products=4, per_product=3)
    index = ProductIndex.create(tmp_path / "idx", emb, info_for(emb))
    vector = index.vector_of("s2-0")
    assert index.query({"q": vector}, {}, "sample", exclude_sample="s2-0").total == 4  # p2 has two more samples
    alone = index.query({"q": vector}, {}, "sample", exclude_sample="s2-0", domains=["page"])
    assert alone.total == 3 and "p2" not in {h.product_id for h in alone.hits}
    samples = index.query({"q": vector}, {}, "sample", exclude_sample="s2-0", per_product=False)
    assert samples.total == 11


def test_words_with_a_photo_add_their_evidence_to_the_photos_relevance():
    from prodlens.index.relevance import RelevanceModel

    model = RelevanceModel.packaged()
    signals = {"q_cos": np.array([0.5, 0.5]), "q_lead": np.array([0.0, 0.0]),
               "q_name_rr": np.array([1.0, 0.0]), "q_text_rr": np.array([1.0, 0.0])}
    photo = model.score("image", signals, 2)
    with_words = model.score("image+text", signals, 2)
    assert photo[0] == photo[1]  # the photo's model sees no words
    assert with_words[0] > photo[0] and with_words[1] == pytest.approx(photo[1])  # named: more; unnamed: the same


def test_attribute_conditions_become_one_milvus_expression_on_folded_values():
    from prodlens.index.filters import milvus_expression, parse_filters, searchable

    conditions = parse_filters({"brand": ["Arla", "GARANT"], "price": {"gte": 10, "lt": 20}}, {"brand", "price"})
    assert milvus_expression(conditions) == ('(attributes["s"]["brand"] == "arla" or attributes["s"]["brand"] == '
                                             '"garant") and attributes["n"]["price"] >= 10.0 and '
                                             'attributes["n"]["price"] < 20.0')
    assert searchable({"brand": "Arla", "price": "12.50"}) == {"s": {"brand": "arla", "price": "12.5"},
                                                              "n": {"price": 12.5}}
