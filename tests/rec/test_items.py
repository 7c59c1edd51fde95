"""The living item catalogue of a trained LEARN run: items added after training are recommended at once and accepted
in histories, by the Python API, the CLI and HTTP; removals; the table's versions under racing writers; the
cold-start benchmark is exactly this path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError
from prodlens.rec import RecConfig, evaluate_recommender, load_rec_data
from prodlens.rec import items as item_table
from prodlens.rec.data import cold_start_split
from prodlens.rec.serve import ITEMS_DIR, Recommender
from tests.rec.test_models import CATEGORIES, write_dataset

BIN = Path(sys.executable).parent
NEW_BRAND = 9  # "Zest": left out of the items file the model is trained with


def _new_items():
    return [(f"p{c}{NEW_BRAND}", f"Zest {cat} no. {NEW_BRAND}") for c, cat in enumerate(CATEGORIES)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A LEARN run trained without the Zest products (their interactions are dropped as unknown)."""
    base = tmp_path_factory.mktemp("living")
    inter, items = write_dataset(base)
    lines = items.read_text().splitlines()
    items.write_text("\n".join(line for line in lines if "Zest" not in line) + "\n")
    # one model: the living catalogue's behaviour is the same for an ensemble (tests/rec/test_models.py)
    evaluate_recommender(inter, items, RecConfig(model="learn", epochs=20, patience=20, dim=32, members=1),
                         out_dir=base / "run", cache=FeatureCache(base / "cache"), cold_start=False, progress=False)
    return base / "run", base / "cache"


def test_new_items_are_recommended_and_accepted_in_histories_without_retraining(run, tmp_path):
    run_dir, cache_dir = run
    cache = FeatureCache(cache_dir)
    rec = Recommender(run_dir, cache=cache)
    weights = (run_dir / "best.safetensors").read_bytes()
    assert len(rec.table) == 54 and "p09" not in rec.table.row_of
    lipsticks = ["p00", "p01", "p02"]
    with pytest.raises(ProdlensError, match="not in the catalogue: p09"):
        rec.recommend_history(lipsticks + ["p09"])

    version = rec.add_items([i for i, _ in _new_items()], [t for _, t in _new_items()])
    assert version == 2 and len(rec.table) == 60
    assert (run_dir / "best.safetensors").read_bytes() == weights  # no retraining
    top = [h["item_id"] for h in rec.recommend_history(lipsticks, k=7)]  # 7 lipsticks left unseen, p09 among them
    assert "p09" in top and all(i.startswith("p0") for i in top), top
    # a new item in a history: its content places the user (sunscreen shoppers get sunscreens)
    after_new = [h["item_id"] for h in rec.recommend_history(["p29"], k=5)]
    assert all(i.startswith("p2") for i in after_new), after_new

    other = Recommender(run_dir, cache=cache)  # another process serving the same run sees the same catalogue
    assert other.recommend_history(lipsticks, k=7) == rec.recommend_history(lipsticks, k=7)

    removal = rec.remove_items(["p09"])
    assert removal["removed"] == ["p09"] and removal["already_removed"] == []
    again = rec.remove_items(["p09"])  # idempotent: said so, and no new version written
    assert again == {"version": removal["version"], "removed": [], "already_removed": ["p09"]}
    assert "p09" not in [h["item_id"] for h in other.recommend_history(lipsticks, k=60)]  # picked up on request
    assert other.recommend_history(["p09"], k=3)  # a retired item still counts in a history
    with pytest.raises(ProdlensError, match="2 unknown item"):
        rec.remove_items(["nope", "nada"])
    with pytest.raises(ProdlensError, match="empty text"):
        rec.add_items(["p99"], [" "])


def test_resumed_training_keeps_the_items_added_and_removed_since(run, tmp_path):
    import shutil

    from prodlens.rec.serve import weights_digest

    run_dir, cache_dir = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cache = FeatureCache(cache_dir)
    rec = Recommender(copy, cache=cache)
    if "p09" not in rec.table.row_of:
        rec.add_items([i for i, _ in _new_items()], [t for _, t in _new_items()])
    rec.add_items(["p00"], ["Zest lipstick no. 0 refill"])  # a trained item's new text
    rec.remove_items(["p01", "p09"])
    inter, items = run_dir.parent / "interactions.tsv", run_dir.parent / "items.tsv"
    evaluate_recommender(inter, items, RecConfig(model="learn", epochs=22, patience=20, dim=32, members=1),
                         out_dir=copy, cache=cache, cold_start=False, progress=False, resume=True)
    table = item_table.ItemTable.open(copy / ITEMS_DIR)
    resumed = Recommender(copy, cache=cache)
    assert table.tower == weights_digest(resumed.model)  # every vector from the resumed weights
    assert {i for i, _ in _new_items()} - {"p09"} <= set(table.live_ids()) and "p09" in table.row_of
    assert not table.live[table.row_of["p01"]] and not table.live[table.row_of["p09"]]
    assert table.text(table.row_of["p00"]) == "Zest lipstick no. 0 refill"
    assert len(table) == 60 - 2
    top = [h["item_id"] for h in resumed.recommend_history(["p10", "p11"], k=8)]  # 8 unseen in the category
    assert "p19" in top and all(i.startswith("p1") for i in top), top  # the added item is served
    assert {h["item_id"] for h in resumed.recommend_history(["p29"], k=60)}.isdisjoint({"p01", "p09"})


def test_cli_adds_items_and_recommends_after_a_history_holding_them(run, tmp_path):
    run_dir, cache_dir = run
    new = tmp_path / "new.tsv"
    new.write_text("item_id\ttitle\tcategory\nq1\tZest perfume deluxe\tperfume\n\tno id here\tperfume\nq2\t\t\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PRODLENS_CACHE": str(cache_dir), "COLUMNS": "200"}
    added = subprocess.run([str(BIN / "prodlens"), "rec", "items", "add", str(run_dir), "--items", str(new)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert added.returncode == 0, added.stderr
    assert "added 1 item(s)" in added.stdout and "no item id" in added.stderr  # the bad row is reported
    assert "has no text: skipped" in added.stderr  # a new item is placed by its text: without one it is not added
    rec = subprocess.run([str(BIN / "prodlens"), "rec", "recommend", "--checkpoint", str(run_dir), "--history",
                          "q1", "-k", "5", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert rec.returncode == 0, rec.stderr
    hits = [h["item_id"] for h in json.loads(rec.stdout)["results"]]
    assert len(hits) == 5 and all(i.startswith("p3") for i in hits), hits  # perfumes
    info = subprocess.run([str(BIN / "prodlens"), "rec", "items", "info", str(run_dir)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert json.loads(info.stdout)["items"] >= 55


def test_cold_start_benchmark_adds_the_hidden_items_to_the_trained_run(tmp_path):
    inter, items = write_dataset(tmp_path / "data", users=200, seed=1)
    cache = FeatureCache(tmp_path / "cache")
    result = evaluate_recommender(inter, items, RecConfig(model="learn", epochs=10, patience=10, dim=32),
                                  out_dir=tmp_path / "run", cache=cache, progress=False)
    data = load_rec_data(inter, items)
    cold = cold_start_split(data, 0.1, seed=0)
    hidden = {data.item_ids[i] for i in cold.cold_items}
    table = item_table.ItemTable.open(tmp_path / "run" / "cold-start" / ITEMS_DIR)
    # trained without them: the first segment is the catalogue minus the hidden items, the second adds them
    assert set(table.segments[0].ids) == set(data.item_ids) - hidden and set(table.segments[1].ids) == hidden
    assert result["cold_start"]["n"] == len(cold.test) > 0 and "added to the trained run" in \
        result["cold_start"]["definition"]
    # what a user gets after adding the same items to the trained run is the benchmark's number
    rec = Recommender(tmp_path / "run" / "cold-start", cache=cache)
    ranks = rec.target_ranks([([data.item_ids[i] for i in h], data.item_ids[t]) for _, h, t in cold.test])
    assert float((ranks < 10).mean()) == result["cold_start"]["R@10"]
    again = evaluate_recommender(inter, items, RecConfig(model="learn"), checkpoint=tmp_path / "run", cache=cache,
                                 progress=False)
    assert again["cold_start"]["R@10"] == result["cold_start"]["R@10"]
    assert item_table.ItemTable.open(tmp_path / "run" / "cold-start" / ITEMS_DIR).version == table.version


def test_a_user_whose_items_were_all_hidden_is_no_user_of_the_cold_start_run(tmp_path):
    from prodlens.rec.content import content_vectors
    from prodlens.rec.data import Split, without_hidden_items
    from prodlens.rec.registry import new_model
    from prodlens.rec.serve import save_run_data
    from prodlens.rec.train import CHECKPOINT_FORMAT
    from prodlens.runs import BEST, RunDir

    inter, items = write_dataset(tmp_path / "data", users=20, seed=2)
    data = load_rec_data(inter, items)
    first = set(data.sequences[0].tolist())
    warm, _ = without_hidden_items(data, Split(data.sequences, [], [], first))
    assert len(warm.sequences[0]) == 0
    cache = FeatureCache(tmp_path / "cache")
    content = content_vectors(warm.item_ids, warm.item_texts, "minilm", cache, progress=False)
    cfg = RecConfig(model="learn", dim=16, members=1)
    model = new_model(cfg, warm.n_items, content)
    RunDir(tmp_path / "run").save(BEST, {"model": model.state_dict(), "config": cfg.to_dict(),
                                           "item_ids": warm.item_ids, "format": CHECKPOINT_FORMAT})
    save_run_data(warm, tmp_path / "run", model, content)
    rec = Recommender(tmp_path / "run", cache=cache)
    with pytest.raises(KeyError, match="unknown user"):  # not "the history is empty"
        rec.recommend_user(data.user_ids[0])
    assert len(rec.recommend_user(data.user_ids[1], k=3)) == 3


def _rows(ids, dim=3, removed=None):
    n = len(ids)
    return item_table.ItemRows.new(ids, [f"text {i}" for i in ids], np.full(n, -1),
                                   np.arange(n * dim, dtype=np.float32).reshape(n, dim), np.ones((n, 2)), removed)


def test_the_table_keeps_each_items_latest_row_across_merges(tmp_path, monkeypatch):
    monkeypatch.setattr(item_table, "MAX_SEGMENTS", 3)
    path = tmp_path / "items"
    item_table.create_table(path, _rows(["a", "b"]), "w1")
    item_table.append_rows(path, _rows(["c"]), "w1")
    item_table.append_rows(path, _rows(["a"], removed=[True]), "w1")  # retire a
    item_table.append_rows(path, _rows(["b", "d"]), "w1")  # a fourth segment: merged into one
    table = item_table.ItemTable.open(path)
    assert table.version == 4 and len(table.segments) == 1
    assert sorted(table.live_ids()) == ["b", "c", "d"] and "a" in table.row_of  # retired, still readable
    assert sorted(p.name for p in path.glob("seg-*")) == ["seg-000004.content.npy", "seg-000004.parquet",
                                                         "seg-000004.vectors.npy"]
    with pytest.raises(ProdlensError, match="other weights"):
        item_table.append_rows(path, _rows(["e"]), "w2")


RACER = """
import sys, numpy as np
from prodlens.rec import items as t
ids = [f"{sys.argv[2]}{i}" for i in range(int(sys.argv[3]))]
for item in ids:
    t.append_rows(sys.argv[1], t.ItemRows.new([item], ["x"], [-1], np.zeros((1, 3)), np.zeros((1, 2))), "w")
"""


def test_racing_writers_lose_no_item(tmp_path):
    path = tmp_path / "items"
    item_table.create_table(path, _rows(["seed"]), "w")
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(path), prefix, "20"]) for prefix in ("x", "y")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    table = item_table.ItemTable.open(path)
    assert len(table) == 41 and table.version == 41


def test_http_item_updates_need_the_api_key(run, tmp_path):
    from prodlens.serve import SearchService, ServeConfig, create_app

    run_dir, cache_dir = run
    index = _tiny_index(tmp_path, FeatureCache(cache_dir))
    service = SearchService(ServeConfig(str(index), cache_dir=str(cache_dir), rec_run=str(run_dir),
                                        api_key="s3cret"))
    with TestClient(create_app(service.config, service)) as client:
        body = {"items": [{"item_id": "h1", "text": "Zest shampoo extra"}]}
        assert client.post("/recommend/items", json=body).status_code == 401
        assert client.post("/recommend/items", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        r = client.post("/recommend/items", json=body, headers={"X-API-Key": "s3cret"})
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        hits = client.post("/recommend", json={"history": ["p10", "p11"], "k": 9}).json()["results"]
        assert "h1" in [h["item_id"] for h in hits]  # the 9 shampoos left: the new one among them, at once
        assert client.delete("/recommend/items/h1", headers={"X-API-Key": "s3cret"}).status_code == 200
        hits = client.post("/recommend", json={"history": ["p10", "p11"], "k": 60}).json()["results"]
        assert "h1" not in [h["item_id"] for h in hits]
        assert client.get("/stats").json()["recommender"]["item_table_version"] >= 3
    closed = SearchService(ServeConfig(str(index), cache_dir=str(cache_dir), rec_run=str(run_dir)))
    with TestClient(create_app(closed.config, closed)) as client:
        r = client.post("/recommend/items", json={"items": []}, headers={"X-API-Key": "s3cret"})
        assert r.status_code == 403 and "takes no writes" in r.json()["detail"]


def _tiny_index(tmp_path, cache):
    from prodlens import api
    from prodlens.catalog import load_folder
    from prodlens.demo import generate_demo_catalog
    from prodlens.embed import EmbedConfig

    root = generate_demo_catalog(tmp_path / "cat", n_products=3, videos_per_product=0, lives_per_product=0,
                                 progress=False)
    api.index_catalog(load_folder(root), tmp_path / "index", ("page",), EmbedConfig(frames=1), cache=cache,
                      progress=False)
    return tmp_path / "index"


def test_a_run_saved_before_the_item_table_serves_as_it_did_and_refuses_new_items(run, tmp_path):
    """Older runs kept LEARN's standardised content in the weights and the catalogue in items.parquet."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from prodlens.tensorfile import load_state, save_state

    run_dir, cache_dir = run
    old = tmp_path / "old"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns("items"))
    table = item_table.ItemTable.open(run_dir / ITEMS_DIR)
    first = table.segments[0]
    state = load_state(run_dir / "best.safetensors")
    weights = state["model"]
    standardised = (torch.from_numpy(np.asarray(first.content)) - weights.pop("content_mean")) / \
        weights.pop("content_std")
    weights["content"] = torch.cat([standardised, torch.zeros(1, standardised.shape[1])])
    save_state(old / "best.safetensors", {**state, "model": weights, "format": "prodlens-rec-2"})
    pq.write_table(pa.table({"item_id": first.ids, "text": first.texts}), old / "items.parquet")

    legacy = Recommender(old)
    current = Recommender(run_dir, cache=FeatureCache(cache_dir))
    user = next(u for u, h in current.histories.items() if all(i in first.ids for i in h))
    trained_with = set(first.ids)  # the current run has taken items since: compare on the training catalogue
    now = [(h["item_id"], h["score"]) for h in current.recommend_user(user, 60) if h["item_id"] in trained_with][:5]
    before = [(h["item_id"], h["score"]) for h in legacy.recommend_user(user, 5)]
    assert [i for i, _ in before] == [i for i, _ in now] and len(now) == 5
    assert np.allclose([s for _, s in before], [s for _, s in now], atol=1e-4)
    assert (old / ITEMS_DIR / item_table.MANIFEST).exists()  # written once from items.parquet
    with pytest.raises(ProdlensError, match="trained before items could be added"):
        legacy.add_items(["z1"], ["Zest lipstick"])


def test_recommend_reads_users_from_another_interactions_file(run, tmp_path):
    run_dir, cache_dir = run
    (tmp_path / "today.tsv").write_text("user_id\titem_id\ttimestamp\nshopper\tp21\t2\nshopper\tp20\t1\n")
    rec = Recommender.from_run(run_dir, tmp_path / "today.tsv")
    assert rec.history_of("shopper") == ["p20", "p21"]  # time order
    assert all(h["item_id"].startswith("p2") for h in rec.recommend_user("shopper", 5))  # sunscreens


def test_a_reader_reads_only_the_segments_written_since_it_last_looked(tmp_path, monkeypatch):
    path = tmp_path / "items"
    item_table.create_table(path, _rows(["a", "b", "c"]), "w")
    reader = item_table.ItemTable.open(path)
    assert reader.refreshed() is reader  # nothing new
    item_table.append_rows(path, _rows(["d", "a"]), "w")  # a new item and a new text for a
    item_table.append_rows(path, _rows(["b"], removed=[True]), "w")
    opened = []
    monkeypatch.setattr(item_table.Segment, "__init__",
                        lambda self, d, name, _init=item_table.Segment.__init__: opened.append(name) or
                        _init(self, d, name))
    later = reader.refreshed()
    assert opened == ["seg-000002", "seg-000003"]  # the first segment is not read again
    fresh = item_table.ItemTable.open(path)
    assert later.row_of == fresh.row_of and later.live.tolist() == fresh.live.tolist()
    assert sorted(later.live_ids()) == ["a", "c", "d"] and later.text(later.row_of["a"]) == "text a"


def test_above_the_threshold_top_k_comes_from_an_hnsw_graph_that_follows_the_table(run, tmp_path):
    import shutil

    run_dir, cache_dir = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    exact = Recommender(copy, cache=FeatureCache(cache_dir))
    approx = Recommender(copy, cache=FeatureCache(cache_dir), ann_above=1)
    assert exact._ann is None and approx._ann is not None
    users = sorted(exact.histories)[:40]
    same = [[h["item_id"] for h in exact.recommend_user(u, 10)] == [h["item_id"] for h in approx.recommend_user(u, 10)]
            for u in users]
    assert np.mean(same) >= 0.95  # 60 items: the graph is all but exact
    exact.add_items(["g1"], ["Zest toothpaste gel"])  # written by another Recommender: the graph takes it in
    toothpastes = [h["item_id"] for h in approx.recommend_history(["p40", "p41"], k=9)]
    assert "g1" in toothpastes and not {"p40", "p41"} & set(toothpastes)
    assert (copy / ITEMS_DIR / "hnsw" / "GRAPH.json").exists()  # saved by the process that built it
    later = Recommender(copy, cache=FeatureCache(cache_dir), ann_above=1)  # the next process opens it
    assert later._ann.inserted <= 1  # at most g1, added after the graph was saved
    assert [[h["item_id"] for h in later.recommend_user(u, 10)] for u in users] == \
        [[h["item_id"] for h in approx.recommend_user(u, 10)] for u in users]
    exact.remove_items(["g1"])
    assert "g1" not in [h["item_id"] for h in approx.recommend_history(["p40", "p41"], k=60)]
