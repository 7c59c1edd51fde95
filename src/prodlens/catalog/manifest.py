"""The catalogue on disk: `products.parquet` + `samples.parquet` + `catalog.json` (+ `bad_records.jsonl`).

Media paths are relative to the catalogue root that `catalog.json` names (relative to the manifest directory or
absolute). `samples.parquet` is written in row groups of ROW_GROUP_ROWS samples, the unit of reading; distributed
jobs cut shards by row ranges (`iter_range`).

Two ways to read it:
- `open_manifest(dir)` → ManifestView: lazy and columnar. Selecting a split or domains is a filter; samples come in
  batches read a row group at a time, so memory is bounded by the batch whatever the catalogue's size. Nothing
  touches the filesystem per media path: paths are checked where they are decoded, and by `catalog validate`.
- `load_manifest(dir)` → Catalog: everything in memory, for catalogues of evaluation size.
Rows that cannot be read (missing ids, unknown domain, no media...) are reported as bad records, not fatal.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import atomic
from ..errors import BadRecords, ProdlensError, RecordError
from .schema import DOMAINS, Catalog, Product, Sample
from .text import clean_text

MANIFEST_VERSION = 2
ROW_GROUP_ROWS = 8192

PRODUCT_SCHEMA = pa.schema([
    ("product_id", pa.string()), ("title", pa.string()), ("category", pa.string()), ("description", pa.string()),
])
SAMPLE_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("product_id", pa.string()), ("domain", pa.string()),
    ("images", pa.list_(pa.string())), ("video", pa.string()), ("title", pa.string()), ("text", pa.string()),
    ("asr_text", pa.string()), ("split", pa.string()),
])


def is_manifest_dir(path: Path) -> bool:
    return (path / "samples.parquet").exists() and (path / "products.parquet").exists()


def save_manifest(catalog: Catalog, out_dir: str | Path) -> Path:
    """Write the catalogue manifest under `out_dir`. Media paths are kept relative to `catalog.root`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    products = pa.Table.from_pylist([p.__dict__ for p in catalog.products.values()], schema=PRODUCT_SCHEMA)
    samples = pa.Table.from_pylist(
        [{**s.__dict__, "images": list(s.images)} for s in catalog.samples], schema=SAMPLE_SCHEMA)
    for name, table in (("products.parquet", products), ("samples.parquet", samples)):
        with atomic.atomic_path(out_dir / name) as tmp:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
    root = catalog.root.resolve()
    try:
        root_field = str(root.relative_to(out_dir.resolve()))
    except ValueError:
        root_field = str(root)
    atomic.write_json(out_dir / "catalog.json", {"version": MANIFEST_VERSION, "name": catalog.name, "root": root_field,
                                                  "bad_records_at_import": catalog.bad.as_dicts()})
    return out_dir


ROW = "_row"  # the file position of a row read from samples.parquet (not stored: added when read)


def _meta(manifest_dir: Path) -> tuple[dict, Path]:
    if not is_manifest_dir(manifest_dir):
        raise ProdlensError(f"{manifest_dir} is not a prodlens manifest (needs products.parquet and samples.parquet)")
    meta_path = manifest_dir / "catalog.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    root = Path(meta.get("root", "."))
    if not root.is_absolute():
        root = manifest_dir / root
    return meta, root


class ManifestView:
    """A manifest, lazily: a selection (split, domains) over `samples.parquet`, read in batches."""

    def __init__(self, manifest_dir: str | Path, split: str | None = None, domains: Iterable[str] | None = None):
        self.dir = Path(manifest_dir)
        self.meta, self.root = _meta(self.dir)
        self.name = self.meta.get("name", self.dir.name)
        self.split = split
        self.domains = tuple(domains) if domains else None
        for d in self.domains or ():
            if d not in DOMAINS:
                raise ProdlensError(f"unknown domain {d!r} (expected one of {', '.join(DOMAINS)})")
        try:
            self._file = pq.ParquetFile(self.dir / "samples.parquet")  # reads the footer only
        except Exception as e:  # pyarrow raises several types for damaged files
            raise ProdlensError(f"cannot read {self.dir / 'samples.parquet'}: {e}") from e

    def select(self, split: str | None = None, domains: Iterable[str] | None = None) -> "ManifestView":
        return ManifestView(self.dir, split or self.split, domains or self.domains)

    @property
    def filter(self) -> pc.Expression | None:
        parts = []
        if self.split:  # split-less samples (e.g. a gallery's pages) belong to every split
            parts.append((pc.field("split") == self.split) | pc.field("split").is_null())
        if self.domains:
            parts.append(pc.field("domain").isin(list(self.domains)))
        expr = None
        for part in parts:
            expr = part if expr is None else expr & part
        return expr

    def count(self) -> int:
        if self.filter is None:
            return self._file.metadata.num_rows
        return ds.dataset(self.dir / "samples.parquet", format="parquet").count_rows(filter=self.filter)

    def column_values(self, column: str) -> list:
        """Distinct values of one column over the selection (read one column at a time)."""
        values: set = set()
        for table in self.iter_tables(columns=sorted({column, "split", "domain"})):
            values.update(v for v in pc.unique(table.column(column)).to_pylist() if v is not None)
        return sorted(values)

    def iter_tables(self, batch_rows: int = ROW_GROUP_ROWS, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The selection as Arrow tables of `batch_rows` rows (the last may be shorter), read a row group at a time:
        memory holds one row group and one batch."""
        def groups() -> Iterator[pa.Table]:
            first = 0
            for g in range(self._file.num_row_groups):
                table = self._file.read_row_group(g, columns=columns)
                yield self._selected(_numbered(table, first))
                first += len(table)

        return _rebatch(groups(), batch_rows)

    @property
    def total_rows(self) -> int:
        """Rows of samples.parquet before any selection: the row positions shards are cut by."""
        return self._file.metadata.num_rows

    def iter_range(self, start: int, stop: int, batch_rows: int = 1024) -> Iterator[pa.Table]:
        """The selected rows among rows [start, stop) of samples.parquet, in tables of `batch_rows` rows. Only the
        row groups that overlap the range are read."""
        def pieces() -> Iterator[pa.Table]:
            first = 0
            for group in range(self._file.num_row_groups):
                rows = self._file.metadata.row_group(group).num_rows
                lo, hi = max(start, first), min(stop, first + rows)
                if lo < hi:
                    yield self._selected(_numbered(self._file.read_row_group(group).slice(lo - first, hi - lo), lo))
                first += rows
                if first >= stop:
                    break

        return _rebatch(pieces(), batch_rows)

    def _selected(self, table: pa.Table) -> pa.Table:
        expr = self.filter
        return table if expr is None else table.filter(expr)

    def iter_samples(self, batch_rows: int = 1024, bad: BadRecords | None = None) -> Iterator[list[Sample]]:
        """Samples in batches; rows that cannot be samples go to `bad`."""
        for table in self.iter_tables(batch_rows):
            yield samples_from_rows(table.to_pylist(), bad if bad is not None else BadRecords())

    def products_for(self, product_ids: Iterable[str]) -> dict[str, Product]:
        wanted = pa.array(sorted(set(product_ids)), pa.string())
        table = ds.dataset(self.dir / "products.parquet", format="parquet").to_table(
            filter=pc.field("product_id").isin(wanted))
        return {p.product_id: p for p in products_from_rows(table.to_pylist(), BadRecords())}

    def catalog_of(self, samples: list[Sample], bad: BadRecords | None = None) -> Catalog:
        """A small in-memory catalogue of these samples and their products (one batch of a streaming job)."""
        return Catalog.build(self.root, list(self.products_for(s.product_id for s in samples).values()), samples,
                             bad, name=self.name)

    def to_catalog(self) -> Catalog:
        """The whole selection in memory."""
        bad = BadRecords()
        products = products_from_rows(pq.read_table(self.dir / "products.parquet").to_pylist(), bad)
        samples = [s for batch in self.iter_samples(ROW_GROUP_ROWS, bad=bad) for s in batch]
        return Catalog.build(self.root, products, samples, bad, name=self.name)


def _numbered(table: pa.Table, first: int) -> pa.Table:
    """`table` (rows first, first + 1, ... of samples.parquet) with each row's position in the file as `_row`, so a
    bad row is named by where it is, whatever selection or batch it arrives in."""
    return table.append_column(ROW, pa.array(np.arange(first, first + len(table), dtype=np.int64)))


def _rebatch(tables: Iterable[pa.Table], batch_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `batch_rows` rows (the last may be shorter) out of tables of any size."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= batch_rows:
            merged = pa.concat_tables(pending)
            yield merged.slice(0, batch_rows)
            pending, held = [merged.slice(batch_rows)], held - batch_rows
    if held:
        yield pa.concat_tables(pending)


def open_manifest(manifest_dir: str | Path, split: str | None = None,
                  domains: Iterable[str] | None = None) -> ManifestView:
    return ManifestView(manifest_dir, split, domains)


def load_manifest(manifest_dir: str | Path) -> Catalog:
    return ManifestView(manifest_dir).to_catalog()


def products_from_rows(rows: list[dict], bad: BadRecords) -> list[Product]:
    products = []
    for i, row in enumerate(rows, start=1):
        pid = row.get("product_id")
        if not isinstance(pid, str) or not pid:
            bad.add(f"products.parquet row {i}", "missing product_id", "manifest")
            continue
        try:
            products.append(Product(pid, *(clean_text(row.get(k) or "", pid)
                                           for k in ("title", "category", "description"))))
        except RecordError as e:
            bad.add_error(e, "manifest")
    return products


def samples_from_rows(rows: list[dict], bad: BadRecords) -> list[Sample]:
    samples = []
    for i, row in enumerate(rows):
        record = row.get("sample_id") or f"samples.parquet row {row.get(ROW, i) + 1}"
        try:
            samples.append(_sample_from_row(row, record))
        except RecordError as e:
            bad.add_error(e, "manifest")
    return samples


def _sample_from_row(row: dict, record: str) -> Sample:
    def text(key: str) -> str:
        value = row.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise RecordError(record, f"column {key!r} is not text")
        return clean_text(value, record)

    if not row.get("sample_id"):  # a streaming job would embed it under no name
        raise RecordError(record, "empty sample_id")
    images = row.get("images") or []
    if not all(isinstance(x, str) and x for x in images):
        raise RecordError(record, "column 'images' holds an empty or non-text path")
    asr = row.get("asr_text")
    return Sample(
        sample_id=str(row.get("sample_id") or ""), product_id=str(row.get("product_id") or ""),
        domain=str(row.get("domain") or ""), images=tuple(images), video=row.get("video") or None,
        title=text("title"), text=text("text"), asr_text=clean_text(asr, record) if asr else None,
        split=row.get("split") or None,
    )
