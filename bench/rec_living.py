"""New items in a trained LEARN run: how long `add_items` takes and when the items are served, here and in another
process serving the same run; baseline: retraining, the only way before (its minutes come from the run's log).

1. A trained run (`prodlens rec eval --out RUN`): items of its catalogue's own kind (titles rewritten with a new
   brand) are added 1 and 100 at a time. Measured: `add_items` seconds (content encoder + item tower + the table's new
   segment, the encoder already loaded), then the seconds until a second `Recommender` on the same run (what another
   server process holds) first returns a new item for a history of the item it was made from.
2. The table at 1M items: opening it (what a process does on start and after another writer merged segments), and
   a reader picking up one appended item (what every serving process does after each write).
3. The HNSW graph of the approximate top-k (`--rec-ann-above`) at 100k items: built and saved by the first process
   that serves the run, against opening the saved graph in the next process (and after a merge renumbered every
   row of the table), the same random unit vectors.

    python bench/rec_living.py [--run RUN_DIR] [--table-items 1000000] [--graph-items 100000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from prodlens.embed import FeatureCache, default_cache_dir
from prodlens.rec import items as item_table
from prodlens.rec.item_graph import ItemGraph
from prodlens.rec.serve import Recommender


def added_rows(run: Path, sizes=(1, 100)) -> list[tuple]:
    writer = Recommender(run, cache=FeatureCache(default_cache_dir()))
    reader = Recommender(run, histories={})  # another process's view of the run
    stamp = time.time_ns()
    writer.add_items(["warm-up"], [f"warm up the content encoder {stamp}"])  # loads it: a server keeps it loaded
    rows = []
    rng = np.random.default_rng(0)
    for size in sizes:
        sources = rng.choice(writer.item_ids, size, replace=False).tolist()
        ids = [f"new-{size}-{i}" for i in range(size)]
        texts = [f"Novabrand {stamp} {writer.title(s)}" for s in sources]  # never in the content cache
        start = time.perf_counter()
        writer.add_items(ids, texts)
        added = time.perf_counter() - start
        start = time.perf_counter()
        served = reader.recommend_history([sources[0]], k=10)
        seen = time.perf_counter() - start
        rows.append((size, added, seen, ids[0] in [h["item_id"] for h in served]))
    return rows


def open_rows(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        rows = item_table.ItemRows.new([f"i{i}" for i in range(n)], [f"item {i} title words" for i in range(n)],
                                       np.arange(n), rng.standard_normal((n, 384), dtype=np.float32),
                                       rng.standard_normal((n, 128), dtype=np.float32))
        item_table.create_table(Path(tmp), rows, "w")
        del rows
        start = time.perf_counter()
        reader = item_table.ItemTable.open(Path(tmp))
        opened = time.perf_counter() - start
        one = item_table.ItemRows.new(["new"], ["a new item"], [-1], np.zeros((1, 384)), np.zeros((1, 128)))
        item_table.append_rows(Path(tmp), one, "w")
        start = time.perf_counter()
        assert "new" in reader.refreshed().row_of
        return opened, time.perf_counter() - start


def graph_rows(n: int) -> dict:
    """The HNSW graph over an n-item table (random unit vectors, d 128): built, synced and saved by the first process;
    opened and synced by the next one (the baseline: building it again); and after a merge renumbered every row."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((n, 128), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = item_table.ItemRows.new([f"i{i}" for i in range(n)], [""] * n, np.arange(n),
                                       np.zeros((n, 0), np.float32), vectors)
        item_table.create_table(path, rows, "w")
        del rows, vectors

        def synced(graph):
            table = item_table.ItemTable.open(path)
            return (graph or ItemGraph.empty(128)).sync(table, [s.vectors for s in table.segments])

        start = time.perf_counter()
        built = synced(None)
        built.save(path)
        build = time.perf_counter() - start
        start = time.perf_counter()
        opened = synced(ItemGraph.load(path, 128))
        reopen = time.perf_counter() - start
        for i in range(item_table.MAX_SEGMENTS):  # the next append merges every segment: rows renumbered
            one = item_table.ItemRows.new([f"new{i}"], [""], [-1], np.zeros((1, 0)), rng.standard_normal((1, 128)))
            item_table.append_rows(path, one, "w")
        start = time.perf_counter()
        merged = synced(ItemGraph.load(path, 128))
        after_merge = time.perf_counter() - start
        return {"items": n, "build_and_save_s": build, "open_s": reopen, "inserted_on_open": opened.inserted,
                "open_after_merge_s": after_merge, "inserted_after_merge": merged.inserted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a trained LEARN run (it gets the new items); without it, parts 2-3")
    ap.add_argument("--table-items", type=int, default=1_000_000)
    ap.add_argument("--graph-items", type=int, default=100_000, help="the HNSW graph's size (0: skip it)")
    args = ap.parse_args()
    console = Console(width=160)
    if args.run is not None:
        log = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()]
        eval_info = json.loads((args.run / "eval.json").read_text())["training"] if (args.run / "eval.json").exists() \
            else {}
        rows = added_rows(args.run)
        table = Table(title=f"new items into {args.run} ({len(log)} epochs of training, "
                            f"{eval_info.get('train_minutes', '?')} min: the baseline)", title_justify="left")
        for col in ("items added", "add_items s", "first request in another process s", "new item served",
                    "vs retraining"):
            table.add_column(col, justify="right")
        for size, added, seen, served in rows:
            minutes = eval_info.get("train_minutes")
            table.add_row(str(size), f"{added:.3f}", f"{seen:.3f}", "yes" if served else "no",
                          f"{minutes * 60 / (added + seen):,.0f}x faster" if minutes else "-")
        console.print(table)
    if args.table_items:
        opened, refreshed = open_rows(args.table_items)
        console.print(f"an item table of {args.table_items:,} items: opened in {opened:.2f} s; a reader sees one "
                      f"item appended by another writer {refreshed:.3f} s after it looks", markup=False)
    if args.graph_items:
        g = graph_rows(args.graph_items)
        console.print(f"the HNSW graph over {g['items']:,} items: built and saved by the first process in "
                      f"{g['build_and_save_s']:.1f} s; opened by the next in {g['open_s']:.1f} s "
                      f"({g['build_and_save_s'] / g['open_s']:.0f}x faster, {g['inserted_on_open']} items inserted); "
                      f"after a merge renumbered every row, opened in {g['open_after_merge_s']:.1f} s "
                      f"({g['inserted_after_merge']} new items inserted)", markup=False)


if __name__ == "__main__":
    main()
