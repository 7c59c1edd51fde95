"""Delimited files and line files read row by row: every good row keeps its own fields, every bad one is named by its
line (the loaders of products.csv, splits.csv and query files stand on these)."""
import random

import pytest

from prodlens.errors import BadRecords
from prodlens.rows import MAX_FIELD, read_lines, read_rows
from tests.helpers import messy_table


@pytest.mark.parametrize("seed,tab", [(10, False), (11, True), (12, False)])
def test_every_good_row_keeps_its_fields_and_every_bad_row_is_named(tmp_path, seed, tab):
    blob, cases = messy_table(random.Random(seed), ["key", "a", "b"], tab, rows=80)
    path = tmp_path / ("rows.tsv" if tab else "rows.csv")
    path.write_bytes(blob)
    bad = BadRecords()
    got = list(read_rows(path, bad, "test", max_field=2 << 20))
    named = {b.record for b in bad}
    good = [c for c in cases if c["kind"] not in ("bad-utf8", "tab-inside")]
    assert [line for line, _ in got] == [c["line"] for c in good]  # the line each row starts on, quoted newlines too
    assert [list(row.values()) for _, row in got] == [c["values"] for c in good]
    for case in cases:
        if case["kind"] in ("bad-utf8", "tab-inside"):
            assert f"{path.name} line {case['line']}" in named


def test_a_runaway_field_is_a_bad_row_not_the_end_of_the_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("key,text\nA,short\nB," + "x" * (MAX_FIELD + 1) + "\nC,after\n", encoding="utf-8")
    bad = BadRecords()
    assert [row["key"] for _, row in read_rows(path, bad, "test")] == ["A", "C"]
    assert [b.record for b in bad] == ["rows.csv line 3"]


def test_query_lines_skip_a_bad_line_and_keep_the_rest(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_bytes(b"\xef\xbb\xbfoat milk\r\n\r\nrose shampoo \xff\xfe\r\n  red apples  \n")
    bad = BadRecords()
    assert read_lines(path, bad, "queries") == ["oat milk", "red apples"]
    assert [b.record for b in bad] == ["queries.txt line 3"]
