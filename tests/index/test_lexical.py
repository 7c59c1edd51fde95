"""Lexical (BM25) search beside the vectors, and its fusion with them by the relevance model."""
import json
import shutil

import numpy as np
import pyarrow.parquet as pq

from prodlens.index import IndexInfo, ProductIndex
from prodlens.index.lexical import LexicalIndex, tokenize

from .test_store import embeddings

NAMES = ["Bravo Apple Juice", "Tropicana Mandarin Morning", "God Morgon Orange Juice", "Oatly Oat Milk",
         "Arla Standard Milk", "Granny Smith", "Pink Lady", "Tropicana Apple Juice"]


def named_index(tmp_path):
    emb = embeddings(n_products=len(NAMES), per_product=3)
    titles = {s: NAMES[int(p[1:])] for s, p in zip(emb.sample_ids, emb.product_ids)}
    texts = {s: f"{t}. A fine product for breakfast." for s, t in titles.items()}
    index = ProductIndex.create(tmp_path / "idx", emb, IndexInfo(titles=titles, texts=texts))
    return index, emb


def test_tokens_are_lowercase_words_without_stop_words_or_plural_s():
    assert tokenize("The Apples of Tropicana, 1.5% fat!") == ["apple", "tropicana", "1", "5", "fat"]
    assert tokenize("glass") == ["glass"]


def test_bm25_finds_an_exact_brand_and_respects_filters(tmp_path):
    index, emb = named_index(tmp_path)
    ids, scores = index.lexical.search("tropicana mandarin", 10)
    assert index.items[int(ids[0])].product_id == "p1" and (scores > 0).all()
    assert {index.items[int(i)].product_id for i in ids} == {"p1", "p7"}  # only documents sharing a word
    allowed = np.array([i for i, it in index.items.items() if it.product_id == "p7"])
    ids, _ = index.lexical.search("tropicana mandarin", 10, allowed)
    assert {index.items[int(i)].product_id for i in ids} == {"p7"}
    assert len(index.lexical.search("spaceship", 10)[0]) == 0


def test_hybrid_search_lifts_the_named_product_an_unsure_vector_misses(tmp_path):
    index, emb = named_index(tmp_path)
    # a query vector between two products, Tropicana Mandarin a little behind: the vector ranking is unsure
    vague = emb.vectors[emb.product_ids.index("p0")] + 0.9 * emb.vectors[emb.product_ids.index("p1")]
    vague /= np.linalg.norm(vague)
    assert [h.product_id for h in index.search(vague, 2)] == ["p0", "p1"]
    hits = index.search(vague, 3, text="tropicana mandarin")
    # BM25 names Tropicana Mandarin first: the fitted fusion puts it first, with a higher relevance than before
    assert hits[0].product_id == "p1"
    alone = {h.product_id: h.score for h in index.search(vague, 2, kind="text:vector")}
    assert hits[0].score > alone["p1"]
    assert index.search(vague, 3, text="tropicana mandarin", domains=["video"])[0].domain == "video"


def test_a_sure_vector_is_not_overruled_by_one_shared_word(tmp_path):
    index, emb = named_index(tmp_path)
    sure = emb.vectors[emb.product_ids.index("p3")]  # exactly Oatly's vector
    assert index.search(sure, 1, text="milk")[0].product_id == "p3"  # "milk" also names Arla Standard Milk


def test_the_lexical_index_is_saved_with_each_version_and_follows_edits(tmp_path):
    index, emb = named_index(tmp_path)
    version = index.save()
    assert (version / "lexical" / "ids.npy").exists()
    for field in ("name", "text"):  # arrays and JSON only: np.load(allow_pickle=False) reads them
        assert json.loads((version / "lexical" / field / "params.index.json").read_text())
    opened = ProductIndex.open(tmp_path / "idx")
    assert opened._lexical is not None and len(opened.lexical) == len(emb)
    opened.remove(product_ids=["p1"])
    ids, _ = opened.lexical.search("mandarin", 10)  # rebuilt after the edit: the removed product is gone
    assert len(ids) == 0


def test_an_index_saved_before_lexical_search_matches_its_titles(tmp_path):
    index, emb = named_index(tmp_path)
    version = index.save()
    table = pq.read_table(version / "items.parquet").drop(["text"])  # as an older prodlens wrote it
    pq.write_table(table, version / "items.parquet")
    shutil.rmtree(version / "lexical")
    opened = ProductIndex.open(tmp_path / "idx")
    assert opened.items[0].text == "Bravo Apple Juice"  # its title (and category, when it has one)
    found = opened.query({}, {"q": "tropicana mandarin"}, "text:lexical", 2)  # BM25 alone
    assert {h.product_id for h in found.hits} == {"p1", "p7"}


def test_an_empty_lexical_index_round_trips(tmp_path):
    LexicalIndex.build({"name": [], "text": []}, []).save(tmp_path / "lex")
    assert len(LexicalIndex.load(tmp_path / "lex").search("anything", 5)[0]) == 0


def test_the_name_field_ranks_the_product_named_above_one_that_mentions_it(tmp_path):
    texts = ["Yoggi Strawberry Yoghurt. Also try our vanilla yoghurt, vanilla and more vanilla.",
             "Yoggi Vanilla Yoghurt. Creamy."]
    lexical = LexicalIndex.build({"name": ["Yoggi Strawberry Yoghurt", "Yoggi Vanilla Yoghurt"], "text": texts},
                                 [10, 11])
    assert list(lexical.search("yoggi vanilla yoghurt", 2, field="name")[0]) == [11, 10]
    assert [list(r) for r in lexical.rankings("vanilla", 2)] == [[11], [10, 11]]


def test_the_text_read_on_a_pack_is_its_own_field_matched_through_misreads(tmp_path):
    from prodlens.index.lexical import read_tokens

    assert read_tokens("ÄPPLE") == ["#ap", "app", "ppl", "ple", "le#"]  # accents folded, word ends marked
    emb = embeddings(n_products=3, per_product=1)
    reads = dict(zip(emb.sample_ids, ["ARLA MELLANMJÖLK 1,5%", "BRAVO ÄPPLE JUICE", ""]))
    index = ProductIndex.create(tmp_path / "idx", emb, IndexInfo(titles=dict(zip(emb.sample_ids, NAMES)),
                                                                 reads=reads))
    ids, _ = index.lexical.search("MELLANMUOLK", 3, field="read")  # one letter misread by OCR
    assert [index.items[int(i)].sample_id for i in ids][:1] == [emb.sample_ids[0]]
    assert len(index.lexical.search("MELLANMUOLK", 3, field="name")[0]) == 0  # the words themselves: no match
    index.save()
    again = ProductIndex.open(tmp_path / "idx")
    assert again.item(emb.sample_ids[1]).read == "BRAVO ÄPPLE JUICE"
    assert len(again.lexical.search("apple", 3, field="read")[0]) == 1


def test_an_index_saved_before_pictures_were_read_still_opens(tmp_path):
    index, emb = named_index(tmp_path)
    index.save()
    version = next(p for p in (tmp_path / "idx").iterdir() if p.is_dir() and (p / "lexical").is_dir())
    shutil.rmtree(version / "lexical" / "read")
    table = pq.read_table(version / "items.parquet")
    pq.write_table(table.drop(["read"]), version / "items.parquet")
    old = ProductIndex.open(tmp_path / "idx")
    assert old.lexical.fields["read"] is None and all(it.read == "" for it in old.items.values())
    assert old.search(emb.vectors[0], 3, text="tropicana")  # hybrid search works on its two fields
