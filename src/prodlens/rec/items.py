"""A recommender run's item table: every item's id, text, frozen content vector, id-embedding slot and item-tower
vector, kept as an append-only log of immutable segments named by one manifest, so items enter and leave a trained
run without retraining.

    RUN/items/
      MANIFEST.json              version, widths, segments (oldest first), the weights their vectors came from
      seg-000000.parquet         item_id, text, slot (-1: no id embedding), removed
      seg-000000.content.npy     (rows, content_dim) float32, the encoder's raw output; memory-mapped on read
      seg-000000.vectors.npy     (rows, dim) float32, the item tower's output × the model's logit scale

A later row of an id replaces its earlier rows (an update); a row with `removed` retires the item: it is never
recommended again, but histories that hold it still read its content. The directory is a `prodlens.versioned` store:
writers hold its lock from reading the manifest to committing the next, so two writers never lose each other's items;
readers never lock: segment files never change once the manifest names them. Many small segments are merged into one
by the writer that would exceed `MAX_SEGMENTS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..errors import ProdlensError
from ..versioned import VersionedStore

MANIFEST = "MANIFEST.json"
FORMAT = "prodlens-rec-items-1"
MAX_SEGMENTS = 32


@dataclass
class ItemRows:
    """Rows to write: ids, texts, id-embedding slots (-1: none), content vectors, tower vectors, retired flags."""
    ids: list[str]
    texts: list[str]
    slots: np.ndarray
    content: np.ndarray
    vectors: np.ndarray
    removed: np.ndarray

    @classmethod
    def new(cls, ids, texts, slots, content, vectors, removed=None) -> "ItemRows":
        n = len(ids)
        return cls(list(ids), list(texts), np.asarray(slots, np.int64).reshape(n),
                   np.asarray(content, np.float32).reshape(n, -1), np.asarray(vectors, np.float32).reshape(n, -1),
                   np.zeros(n, bool) if removed is None else np.asarray(removed, bool).reshape(n))

    def __len__(self) -> int:
        return len(self.ids)


class Segment:
    """One immutable segment, its vectors memory-mapped (copy-on-write: readable as tensors, never written back)."""

    def __init__(self, directory: Path, name: str):
        table = pq.read_table(directory / f"{name}.parquet").to_pydict()
        self.name = name
        self.ids: list[str] = table["item_id"]
        self.texts: list[str] = table["text"]
        self.slots = np.asarray(table["slot"], np.int64)
        self.removed = np.asarray(table["removed"], bool)
        self.content = np.load(directory / f"{name}.content.npy", mmap_mode="c")
        self.vectors = np.load(directory / f"{name}.vectors.npy", mmap_mode="c")

    def __len__(self) -> int:
        return len(self.ids)


def _write_segment(directory: Path, name: str, rows: ItemRows) -> None:
    table = pa.table({"item_id": pa.array(rows.ids, pa.string()), "text": pa.array(rows.texts, pa.string()),
                      "slot": pa.array(rows.slots, pa.int64()), "removed": pa.array(rows.removed, pa.bool_())})
    with atomic.atomic_path(directory / f"{name}.parquet") as tmp:
        pq.write_table(table, tmp)
    for suffix, array in ((".content.npy", rows.content), (".vectors.npy", rows.vectors)):
        with atomic.atomic_path(directory / f"{name}{suffix}") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(array, np.float32))


class ItemTable:
    """The resolved view of a table: global rows number every segment's rows in order; `row_of` maps each id to its
    latest row; `live` marks the rows that may be recommended (the latest row of an id that is not retired)."""

    def __init__(self, path: Path, manifest: dict, segments: list[Segment], base: "ItemTable | None" = None):
        """`base`: a view of the same table whose segments are the first of `segments` (only the rest is read)."""
        self.path, self.manifest, self.segments = path, manifest, segments
        self.starts = np.cumsum([0] + [len(s) for s in segments])
        first = len(base.segments) if base is not None else 0
        self.row_of: dict[str, int] = dict(base.row_of) if base is not None else {}
        self.live = np.zeros(int(self.starts[-1]), bool)
        if base is not None:
            self.live[:len(base.live)] = base.live
        for start, seg in zip(self.starts[first:], segments[first:]):
            rows = int(start) + np.arange(len(seg))
            replaced = [self.row_of[i] for i in seg.ids if i in self.row_of]
            self.live[replaced] = False  # an id's earlier row gives way to its latest
            self.row_of.update(zip(seg.ids, rows.tolist()))
            latest = np.fromiter((self.row_of[i] for i in seg.ids), np.int64, len(seg)) == rows
            self.live[rows] = ~seg.removed & latest  # an id twice in one segment: its last row

    # -- reading ------------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "ItemTable":
        path = Path(path)
        return store(path).read(lambda manifest: cls.of_manifest(path, manifest))

    @classmethod
    def of_manifest(cls, path: Path, manifest: dict) -> "ItemTable":
        """The table version `manifest` names (its segments are read; they never change once named)."""
        return cls(path, _checked(path, manifest), [Segment(path, s["name"]) for s in manifest["segments"]])

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @property
    def tower(self) -> str:
        """The digest of the weights the stored vectors were computed with."""
        return self.manifest["tower"]

    def __len__(self) -> int:
        return int(self.live.sum())

    @property
    def n_rows(self) -> int:
        return int(self.starts[-1])

    def _locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seg = np.searchsorted(self.starts, rows, side="right") - 1
        return seg, rows - self.starts[seg]

    def _gather(self, rows: np.ndarray, field: str) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        seg, offset = self._locate(rows)
        like = getattr(self.segments[0], field)
        out = np.empty((len(rows), *like.shape[1:]), like.dtype)
        for s in np.unique(seg):
            pick = seg == s
            out[pick] = getattr(self.segments[s], field)[offset[pick]]
        return out

    def content(self, rows) -> np.ndarray:
        return self._gather(rows, "content")

    def vectors(self, rows) -> np.ndarray:
        return self._gather(rows, "vectors")

    def slots(self, rows) -> np.ndarray:
        return self._gather(rows, "slots")

    def item_id(self, row: int) -> str:
        seg, offset = self._locate(np.array([row]))
        return self.segments[int(seg[0])].ids[int(offset[0])]

    def text(self, row: int) -> str:
        seg, offset = self._locate(np.array([row]))
        return self.segments[int(seg[0])].texts[int(offset[0])]

    def live_ids(self) -> list[str]:
        return [item for item, row in self.row_of.items() if self.live[row]]

    def refreshed(self) -> "ItemTable":
        """The table as its manifest now stands: this view when nothing changed, this view plus the new segments when
        writers only appended (what serving does after every write: the new rows only, not the catalogue), else a
        fresh read (after a merge)."""
        manifest = read_manifest(self.path)
        if manifest["version"] == self.version:
            return self
        names = [s["name"] for s in manifest["segments"]]
        if names[:len(self.segments)] != [s.name for s in self.segments] or manifest["tower"] != self.tower:
            return ItemTable.open(self.path)
        try:
            new = [Segment(self.path, n) for n in names[len(self.segments):]]
        except FileNotFoundError:  # merged away since the manifest was read
            return ItemTable.open(self.path)
        return ItemTable(self.path, manifest, self.segments + new, base=self)


def store(path: Path) -> VersionedStore:
    return VersionedStore(path, MANIFEST, ["seg-*"], f"the item table {path}")


def _checked(path: Path, manifest: dict) -> dict:
    if manifest.get("format") != FORMAT:
        raise ProdlensError(f"{path}/{MANIFEST} is not a prodlens item table (format {manifest.get('format')!r})")
    return manifest


def read_manifest(path: Path) -> dict:
    manifest = store(Path(path)).manifest()
    if manifest is None:
        raise ProdlensError(f"{path} has no item table ({MANIFEST} is missing)")
    return _checked(path, manifest)


def create_table(path: str | Path, rows: ItemRows, tower: str,
                 carry: Callable[[ItemRows], ItemRows | None] | None = None) -> None:
    """A new table holding `rows` as its first segment (the catalogue a run was trained with); a table already there
    is replaced as a whole, under the writers' lock. `carry`: given the replaced table's rows (each id's latest),
    the rows to keep after `rows`, if any (read under the lock, so nothing a writer added meanwhile is lost)."""
    path = Path(path)
    with store(path).writing() as commit:
        version = 0
        if commit.manifest is not None:
            replaced = ItemTable.of_manifest(path, commit.manifest)
            version = replaced.version
            kept = carry(_resolved(replaced)) if carry is not None else None
            if kept is not None:
                rows = _concat([rows, kept])
        name = _segment_name(version + 1)
        _write_segment(path, name, rows)
        commit(_manifest(version + 1, [name], rows, tower), keep={name})


def append_rows(path: str | Path, rows: ItemRows, tower: str) -> int:
    """Append `rows` as a new segment; returns the table's new version. The caller computed the rows' vectors with the
    weights whose digest is `tower`. Only the manifest is read (the segments too when they are merged)."""
    path = Path(path)
    with store(path).writing() as commit:
        return _append(path, commit, _current(path, commit.manifest, tower), rows, tower)


def update_rows(path: str | Path, tower: str, change: Callable[[ItemTable], ItemRows | None]) -> int:
    """The table's version after `change`: it is given the table as it stands under the writers' lock and returns the
    rows to append (None: nothing to write, no new version), so what it read cannot be changed by another writer
    before its rows land."""
    path = Path(path)
    with store(path).writing() as commit:
        manifest = _current(path, commit.manifest, tower)
        table = ItemTable.of_manifest(path, manifest)
        rows = change(table)
        if rows is None or not len(rows):
            return table.version
        return _append(path, commit, manifest, rows, tower, table)


def _current(path: Path, manifest: dict | None, tower: str) -> dict:
    """The manifest a writer read under the lock, checked: a table, computed with the caller's weights."""
    if manifest is None:
        raise ProdlensError(f"{path} has no item table ({MANIFEST} is missing)")
    if _checked(path, manifest)["tower"] != tower:
        raise ProdlensError(f"the item table {path} was computed with other weights than the model's; "
                            "reopen the run")
    return manifest


def _append(path: Path, commit, manifest: dict, rows: ItemRows, tower: str, table: ItemTable | None = None) -> int:
    """`rows` as the next version's new segment; every segment is merged into one when there would be too many."""
    version = manifest["version"] + 1
    names = [s["name"] for s in manifest["segments"]]
    if len(names) + 1 > MAX_SEGMENTS:
        rows = _concat([_resolved(table or ItemTable.of_manifest(path, manifest)), rows])
        names = []
    name = _segment_name(version)
    _write_segment(path, name, rows)
    commit(_manifest(version, names + [name], rows, tower), keep=set(names) | {name})
    return version


def _resolved(table: ItemTable) -> ItemRows:
    """Each id's latest row once, retired items included (histories may still hold them)."""
    rows = np.array(sorted(table.row_of.values()), np.int64)
    return ItemRows.new([table.item_id(r) for r in rows], [table.text(r) for r in rows], table.slots(rows),
                        table.content(rows), table.vectors(rows), ~table.live[rows])


def _concat(parts: list[ItemRows]) -> ItemRows:
    return ItemRows.new([i for p in parts for i in p.ids], [t for p in parts for t in p.texts],
                        np.concatenate([p.slots for p in parts]), np.concatenate([p.content for p in parts]),
                        np.concatenate([p.vectors for p in parts]), np.concatenate([p.removed for p in parts]))


def _segment_name(version: int) -> str:
    return f"seg-{version:06d}"


def _manifest(version: int, names: list[str], rows: ItemRows, tower: str) -> dict:
    return {"format": FORMAT, "version": version, "tower": tower, "content_dim": int(rows.content.shape[1]),
            "dim": int(rows.vectors.shape[1]), "segments": [{"name": n} for n in names]}
