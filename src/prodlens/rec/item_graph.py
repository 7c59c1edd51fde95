"""An HNSW graph over a served run's item vectors (approximate top-k for large catalogues), kept in step with the
living item table and saved beside it, so a serving process opens the graph instead of building it (over 15 minutes
at 1M items on 2 cores).

Graph ids are slots, not table rows: table rows are renumbered when segments merge, and an item's vector changes
when its text does. Each slot remembers the item it was made for and a checksum of the vector it holds. `sync` matches
slots to the table as it is now: a slot whose item is gone, retired or holds another vector is hidden (a tombstone),
and every live row no slot holds is inserted. So appends, updates, removals, merges and a saved graph all take the
same path, and the graph always answers for exactly the table's live items. Past 20% hidden slots the graph is built
again.

    RUN/items/hnsw/
      GRAPH.json          format, dimension, slot count, the two files below (a prodlens.versioned store)
      graph-<token>.faiss the FAISS index (HNSW, inner product; ids = slots)
      slots-<token>.parquet  item_id and vector checksum of every slot
"""
from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..errors import ProdlensError
from ..index import IndexConfig, VectorIndex
from ..versioned import VersionedStore
from .items import ItemTable

GRAPH_DIR = "hnsw"
GRAPH_FILE = "GRAPH.json"
FORMAT = "prodlens-rec-hnsw-1"
REBUILD_HIDDEN = 0.2  # hidden slots past this share of the graph: build it again
SAVE_INSERTED = 0.1  # a process saves the graph when it inserted more than this share of it


def vector_checksums(vectors: np.ndarray) -> np.ndarray:
    """One 64-bit checksum per row of float32 vectors (its exact bytes): tells a slot's vector from a changed one."""
    bits = np.ascontiguousarray(vectors, np.float32).view(np.uint32).astype(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2 ** 63, bits.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        return (bits * weights).sum(axis=1, dtype=np.uint64)


class ItemGraph:
    def __init__(self, index: VectorIndex, items: list[str], checksums: np.ndarray):
        self.index = index
        self.items = list(items)  # slot → item id
        self.checksums = np.asarray(checksums, np.uint64)  # slot → checksum of its vector
        self.rows = np.full(len(self.items), -1, np.int64)  # slot → the table row it answers for; -1: hidden
        self.inserted = 0

    @classmethod
    def empty(cls, dim: int) -> "ItemGraph":
        return cls(VectorIndex.create(dim, IndexConfig(kind="hnsw")), [], np.zeros(0, np.uint64))

    # -- keeping in step with the table ---------------------------------------------------------------------------
    def sync(self, table: ItemTable, vectors: list[np.ndarray],
             checksums: list[np.ndarray] | None = None) -> "ItemGraph":
        """Match every slot to the table's live rows (per segment: its vectors and, when a caller keeps them, their
        checksums, in row order); hide the slots that no longer match and insert the rows no slot holds. Returns the
        graph to use from now on: this one, or a new one when too many of its slots are hidden."""
        if checksums is None:
            checksums = [vector_checksums(v) for v in vectors]
        row_sums = np.concatenate(checksums) if checksums else np.zeros(0, np.uint64)
        live = table.live
        rows = np.array([table.row_of.get(item, -1) for item in self.items], np.int64)
        ok = rows >= 0
        ok[ok] = live[rows[ok]] & (row_sums[rows[ok]] == self.checksums[ok])
        hidden = np.zeros(len(ok), bool)
        hidden[np.fromiter(self.index.tombstones, np.int64, len(self.index.tombstones))] = True
        ok &= ~hidden  # hidden for good
        matched = np.flatnonzero(ok)
        ok[matched[np.setdiff1d(np.arange(len(matched)), np.unique(rows[matched], return_index=True)[1])]] = False
        self.rows = np.where(ok, rows, -1)
        self.index.remove(np.flatnonzero(~ok & ~hidden))
        if len(self.items) and (~ok).sum() > REBUILD_HIDDEN * len(self.items):
            fresh = ItemGraph.empty(self.index.dim)
            return fresh.sync(table, vectors, checksums)
        held = np.zeros(len(live), bool)
        held[self.rows[ok]] = True
        new = np.flatnonzero(live & ~held)
        if len(new):
            starts = np.asarray(table.starts)
            segment = np.searchsorted(starts, new, side="right") - 1
            slots = np.arange(len(self.items), len(self.items) + len(new))
            for s in np.unique(segment):
                pick = segment == s
                self.index.add(vectors[s][new[pick] - starts[s]], slots[pick])
            self.items += [table.item_id(int(r)) for r in new]
            self.checksums = np.concatenate([self.checksums, row_sums[new]])
            self.rows = np.concatenate([self.rows, new])
            self.inserted += len(new)
        return self

    def search(self, users: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, table rows) of each user's `depth` best live items; missing hits are row -1."""
        scores, slots = self.index.search(users, depth)
        rows = np.where(slots >= 0, self.rows[np.maximum(slots, 0)], -1)
        return scores, rows

    def __len__(self) -> int:
        return len(self.index)

    # -- saved beside the table -----------------------------------------------------------------------------------
    def save(self, items_dir: Path) -> None:
        """The graph, its slots' items and checksums, then GRAPH.json naming them, under the store's writer lock (a
        `prodlens.versioned` store): a reader sees the previous graph or this one, whole, and two processes saving
        at once leave one whole graph. Hidden slots are saved too; the next sync hides them again."""
        token = secrets.token_hex(6)
        graph, slots = f"graph-{token}.faiss", f"slots-{token}.parquet"
        store = _store(items_dir)
        with store.writing() as commit:
            with atomic.atomic_path(store.path / graph) as tmp:
                Path(tmp).write_bytes(self.index.to_bytes())
            with atomic.atomic_path(store.path / slots) as tmp:
                pq.write_table(pa.table({"item_id": pa.array(self.items, pa.string()),
                                         "checksum": pa.array(self.checksums, pa.uint64())}), tmp)
            commit({"format": FORMAT, "dim": self.index.dim, "slots": len(self.items), "graph": graph,
                    "slot_table": slots}, keep={graph, slots})

    @classmethod
    def load(cls, items_dir: Path, dim: int) -> "ItemGraph | None":
        """The saved graph (FAISS and Parquet data only: nothing is executed), or None when there is none of this
        dimension."""
        store = _store(items_dir)

        def read(meta: dict):
            if meta.get("format") != FORMAT or meta.get("dim") != dim:
                return None
            return pq.read_table(store.path / meta["slot_table"]), (store.path / meta["graph"]).read_bytes()

        try:
            found = store.read(read) if store.exists() else None
        except (FileNotFoundError, KeyError, ProdlensError):
            return None
        if found is None:
            return None
        slots, data = found
        index = VectorIndex.from_bytes(data, "hnsw", IndexConfig(kind="hnsw"))
        if index.index.ntotal != len(slots):
            return None
        return cls(index, slots.column("item_id").to_pylist(), slots.column("checksum").to_numpy())


def _store(items_dir: Path) -> VersionedStore:
    path = Path(items_dir) / GRAPH_DIR
    return VersionedStore(path, GRAPH_FILE, ["graph-*", "slots-*"], f"the HNSW graph {path}")
