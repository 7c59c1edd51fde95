"""Interaction and item files in their real shapes: long or sequence form, TSV/CSV/Parquet, id maps, bad rows."""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prodlens.errors import ProdlensError
from prodlens.rec import cold_start_split, leave_one_out, load_rec_data, long_tail_items


def test_long_form_sorted_by_time_with_bad_rows(tmp_path):
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp\n"
                                        "u1,b,20\nu1,a,10\nu1,c,30\nu1,d,30\n"
                                        "u2,a,5\nu2,b,6\nu2,x,7\n"
                                        "u3,a,1\nu3,b,notatime\n"
                                        "broken-row\n"
                                        "u4,a,1\n")
    (tmp_path / "items.tsv").write_text("item_id\ttitle\tbrand\na\tRed lipstick\tAcme\nb\tBlue mascara\tAcme\n"
                                        "c\tGreen nail polish\t\nd\tToner\tZed\ne\tNever bought\tZed\n\tno id\tx\n")
    data = load_rec_data(tmp_path / "inter.csv", tmp_path / "items.tsv", min_length=3)
    assert data.user_ids == ["u1"]  # u2 keeps 2 known items, u3 has a bad timestamp, u4 has one item
    assert [data.item_ids[i] for i in data.sequences[0]] == ["a", "b", "c", "d"]  # time order, ties by file order
    assert data.item_texts[data.item_ids.index("a")] == "Red lipstick. Acme"
    assert "e" in data.item_ids  # never bought, still ranked
    problems = " ".join(b.problem for b in data.bad)
    assert "not a number" in problems and "expected 3 fields" in problems and "no item id" in problems
    assert "1 interaction(s) with items missing" in problems


def test_sequence_form_with_an_item_map_and_parquet_items(tmp_path):
    (tmp_path / "Data.full_sequences.tsv").write_text("user_id\titem_id_seq_chronological\n0\t0 1 2 3\n1\t2 1 0\n")
    (tmp_path / "Data.item2index").write_text("ASIN0\t0\nASIN1\t1\nASIN2\t2\nASIN3\t3\n")
    pq.write_table(pa.table({"item_id:token": ["ASIN0", "ASIN1", "ASIN2", "ASIN3"],
                             "text:token_seq": ["zero", "one", "two", "three"]}), tmp_path / "items.parquet")
    data = load_rec_data(tmp_path / "Data.full_sequences.tsv", tmp_path / "items.parquet")
    assert data.summary()["users"] == 2 and data.n_items == 4
    assert [data.item_texts[i] for i in data.sequences[1]] == ["two", "one", "zero"]


def test_unmatched_ids_are_a_clear_error(tmp_path):
    (tmp_path / "inter.tsv").write_text("user_id\titem_id\nu\t1\nu\t2\nu\t3\n")
    (tmp_path / "items.tsv").write_text("item_id\ttitle\nA\tx\n")
    with pytest.raises(ProdlensError, match="item ids"):
        load_rec_data(tmp_path / "inter.tsv", tmp_path / "items.tsv")
    with pytest.raises(ProdlensError, match="not found"):
        load_rec_data(tmp_path / "missing.tsv", tmp_path / "items.tsv")


def test_protocols(tmp_path):
    rows = ["user_id\titem_id"] + [f"u{u}\ti{(u + j) % 30}" for u in range(40) for j in range(6)]
    (tmp_path / "inter.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "items.tsv").write_text("item_id\ttitle\n" + "".join(f"i{i}\titem {i}\n" for i in range(30)))
    data = load_rec_data(tmp_path / "inter.tsv", tmp_path / "items.tsv")
    split = leave_one_out(data)
    u, history, target = split.test[0]
    assert list(history) == list(data.sequences[u][:-1]) and target == data.sequences[u][-1]
    assert split.valid[0][2] == data.sequences[0][-2] and list(split.train[0]) == list(data.sequences[0][:-2])
    cold = cold_start_split(data, 0.1, seed=1)
    assert len(cold.cold_items) == 3
    assert all(i not in cold.cold_items for seq in cold.train for i in seq)
    assert cold.test and all(t in cold.cold_items for _, _, t in cold.test)
    tail = long_tail_items(split.train, data.n_items)
    assert len(tail) == 24


def test_served_histories_are_arrays_that_read_like_a_dict(tmp_path):
    import random

    from prodlens.rec.data import UserHistories, load_interactions

    rng = random.Random(0)
    users = [f"u{n}" for n in range(300)] + ["zoë", "ü", "u1 0"]
    rows = [(u, f"i{rng.randrange(50)}", t) for u in users for t in rng.sample(range(100), rng.randint(1, 6))]
    rng.shuffle(rows)
    lines = "".join(f"{u}\t{i}\t{t}\n" for u, i, t in rows)
    (tmp_path / "inter.tsv").write_text("user_id\titem_id\ttimestamp\n" + lines, encoding="utf-8")
    histories = load_interactions(tmp_path / "inter.tsv")[0].histories()
    expected = {u: [i for _, i in sorted((t, i) for v, i, t in rows if v == u)] for u in users}
    assert isinstance(histories, UserHistories) and len(histories) == len(users)
    assert dict(histories.items()) == expected
    assert "nobody" not in histories and "u1" in histories and "u10" in histories and "u1 0" in histories
    with pytest.raises(KeyError):
        histories["u"]
    # arrays only: 4 bytes an interaction plus each user's key, offset and place, and the distinct item ids
    assert histories.nbytes < 4 * len(rows) + 40 * len(users) + 10 * 50 + 1000
    with pytest.raises(ProdlensError, match="'a' has two histories"):
        UserHistories(["a", "b", "a"], [0, 1, 2, 3], pa.array(["x", "y", "z"]))


@pytest.mark.parametrize("seed,tab", [(0, True), (1, False), (2, True), (3, False)])
def test_items_file_rows_never_shift_and_every_bad_row_is_named_by_line(tmp_path, seed, tab):
    import random

    from prodlens.rec.data import MAX_ITEM_TEXT, load_items
    from tests.helpers import clean, messy_table

    blob, cases = messy_table(random.Random(seed), ["item_id", "title", "brand"], tab)
    path = tmp_path / ("items.tsv" if tab else "items.csv")
    path.write_bytes(blob)
    texts, bad = load_items(path)
    named = {b.record: b.problem for b in bad}
    expected = {}
    for case in cases:
        record = f"{path.name} line {case['line']}"
        key = case["values"][0].strip()
        if case["kind"] in ("blank-key", "bad-utf8", "tab-inside"):
            assert record in named, (case["kind"], record, named)  # every bad row is named by its line
            continue
        parts = [clean(v) for v in case["values"][1:] if clean(v)]
        if key in expected:  # an id again: the later row wins, the earlier one is reported
            assert named[expected[key][1]].startswith(f"item id {key!r} again at line {case['line']}")
        expected[key] = (". ".join(parts)[:MAX_ITEM_TEXT], record)
    for text, record in expected.values():
        assert text or "has no text" in named[record]  # kept with an empty text, and said
    assert texts == {key: text for key, (text, _) in expected.items()}  # every good row keeps its own text


@pytest.mark.parametrize("seed,tab", [(4, True), (5, False)])
def test_interactions_file_rows_never_shift_and_every_bad_row_is_named_by_line(tmp_path, seed, tab):
    import random

    from prodlens.rec.data import load_interactions
    from tests.helpers import messy_table

    rng = random.Random(seed)
    blob, cases = messy_table(rng, ["user_id", "item_id", "note"], tab, rows=80)
    path = tmp_path / ("inter.tsv" if tab else "inter.csv")
    path.write_bytes(blob)
    inter, bad = load_interactions(path)
    named = {b.record for b in bad}
    histories = inter.histories()
    expected: dict[str, list[str]] = {}
    for case in cases:
        user, item = case["values"][0].strip(), case["values"][1].strip()
        if case["kind"] in ("blank-key", "bad-utf8", "tab-inside") or not item:
            assert f"{path.name} line {case['line']}" in named, case
            continue
        expected.setdefault(user, []).append(item)  # no timestamp column: file order
    assert {u: histories[u] for u in histories} == expected


def test_the_seven_row_items_file_of_issue_40(tmp_path):
    from prodlens.rec.data import load_items

    (tmp_path / "items.tsv").write_text("item_id\ttitle\tbrand\nA\tApple\tx\nB\t\t\nC\tCee\tz\n\tnoid\ty\n"
                                        "D\tDee\t\nC\tCee again\tq\nE\tEee\tw\n")
    texts, bad = load_items(tmp_path / "items.tsv")
    assert texts == {"A": "Apple. x", "B": "", "C": "Cee again. q", "D": "Dee", "E": "Eee. w"}
    problems = {b.record: b.problem for b in bad}
    assert problems["items.tsv line 5"].startswith("no item id")
    assert problems["items.tsv line 4"].startswith("item id 'C' again at line 7")
    assert problems["items.tsv line 3"].startswith("item 'B' has no text")
