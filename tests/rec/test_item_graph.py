"""The HNSW graph over a run's item vectors: it answers for exactly the table's live items through appends, new
texts, removals and merges, and a saved graph is opened, not built again, by the next process."""
import numpy as np

from prodlens.rec import item_graph
from prodlens.rec import items as item_table
from prodlens.rec.item_graph import ItemGraph

DIM = 8


def _rows(ids, seed, removed=None):
    rng = np.random.default_rng(seed)
    n = len(ids)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # unit length: each is its own best inner product
    return item_table.ItemRows.new(ids, [f"text {i}" for i in ids], np.full(n, -1), np.zeros((n, 2), np.float32),
                                   vectors, removed)


def _synced(graph, path):
    table = item_table.ItemTable.open(path)
    graph = (graph or ItemGraph.empty(DIM)).sync(table, [s.vectors for s in table.segments])
    return graph, table


def _answers_for(graph, table):
    """item id → the vector the graph would find it by, for every slot it shows; and every slot's row is current."""
    shown = {}
    for slot, row in enumerate(graph.rows):
        if row >= 0 and slot not in graph.index.tombstones:
            item = table.item_id(int(row))
            assert item not in shown, f"{item} is shown twice"
            assert graph.items[slot] == item
            shown[item] = graph.index.reconstruct([slot])[0]
    return shown


def _check(graph, table):
    shown = _answers_for(graph, table)
    assert sorted(shown) == sorted(table.live_ids())
    for item, vector in shown.items():
        np.testing.assert_array_equal(vector, table.vectors([table.row_of[item]])[0])  # its current vector
    queries = table.vectors(np.flatnonzero(table.live))
    _, rows = graph.search(queries, 3)
    assert set(rows.ravel().tolist()) - {-1} <= set(np.flatnonzero(table.live).tolist())
    assert np.mean(rows[:, 0] == np.flatnonzero(table.live)) > 0.9  # each live item is its own nearest


def test_the_graph_answers_for_exactly_the_live_items_through_every_kind_of_change(tmp_path, monkeypatch):
    monkeypatch.setattr(item_table, "MAX_SEGMENTS", 4)
    path = tmp_path / "items"
    item_table.create_table(path, _rows([f"i{n}" for n in range(200)], 0), "w")
    graph, table = _synced(None, path)
    _check(graph, table)
    item_table.append_rows(path, _rows(["new1", "new2"], 1), "w")  # new items
    item_table.append_rows(path, _rows(["i3", "i4"], 2), "w")  # new texts: new vectors
    item_table.append_rows(path, _rows(["i5", "new1"], 3, removed=[True, True]), "w")  # retired
    graph, table = _synced(graph, path)
    _check(graph, table)
    item_table.append_rows(path, _rows(["i6"], 4), "w")  # a fifth segment: every row renumbered by the merge
    graph, table = _synced(graph, path)
    assert len(table.segments) == 1
    _check(graph, table)
    first = _rows([f"i{n}" for n in range(200)], 0)  # i4's text changes back: its hidden slot's vector again
    back = item_table.ItemRows.new(["i4"], ["text i4"], [-1], np.zeros((1, 2), np.float32), first.vectors[4:5])
    item_table.append_rows(path, back, "w")
    graph, table = _synced(graph, path)
    _check(graph, table)


def test_a_saved_graph_is_opened_not_built_again_even_after_a_merge(tmp_path, monkeypatch):
    monkeypatch.setattr(item_table, "MAX_SEGMENTS", 2)
    path = tmp_path / "items"
    item_table.create_table(path, _rows([f"i{n}" for n in range(300)], 0), "w")
    built, table = _synced(None, path)
    assert built.inserted == 300
    built.save(path)
    opened, _ = _synced(ItemGraph.load(path, DIM), path)
    assert opened.inserted == 0
    queries = np.random.default_rng(9).standard_normal((20, DIM)).astype(np.float32)
    np.testing.assert_array_equal(opened.search(queries, 5)[1], built.search(queries, 5)[1])
    item_table.append_rows(path, _rows(["a"], 1), "w")
    item_table.append_rows(path, _rows(["b"], 2), "w")  # merged: rows renumbered, vectors unchanged
    later, table = _synced(ItemGraph.load(path, DIM), path)
    assert later.inserted == 2  # only the two new items
    _check(later, table)
    assert ItemGraph.load(path, DIM + 1) is None  # another model's width: not this graph


def test_past_a_fifth_of_hidden_slots_the_graph_is_built_again(tmp_path):
    path = tmp_path / "items"
    item_table.create_table(path, _rows([f"i{n}" for n in range(50)], 0), "w")
    graph, _ = _synced(None, path)
    item_table.append_rows(path, _rows([f"i{n}" for n in range(20)], 5), "w")  # 20 of 50 new vectors
    rebuilt, table = _synced(graph, path)
    assert rebuilt is not graph and not rebuilt.index.tombstones and len(rebuilt.items) == 50
    _check(rebuilt, table)
    assert item_graph.REBUILD_HIDDEN < 20 / 50
