"""The catalogue on disk: `products.parquet` + `samples.parquet` + `catalog.json`, media paths relative to the root.

Rows that cannot be read (missing ids, unknown domain, no media...) are reported as bad records, not fatal.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..errors import BadRecords, ProdlensError, RecordError
from .schema import Catalog, Product, Sample
from .text import clean_text

MANIFEST_VERSION = 1

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
            pq.write_table(table, tmp)
    root = catalog.root.resolve()
    try:
        root_field = str(root.relative_to(out_dir.resolve()))
    except ValueError:
        root_field = str(root)
    atomic.write_json(out_dir / "catalog.json", {"version": MANIFEST_VERSION, "name": catalog.name, "root": root_field,
                                                  "bad_records_at_import": catalog.bad.as_dicts()})
    return out_dir


def load_manifest(manifest_dir: str | Path) -> Catalog:
    manifest_dir = Path(manifest_dir)
    if not is_manifest_dir(manifest_dir):
        raise ProdlensError(f"{manifest_dir} is not a prodlens manifest (needs products.parquet and samples.parquet)")
    meta_path = manifest_dir / "catalog.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    root = Path(meta.get("root", "."))
    if not root.is_absolute():
        root = manifest_dir / root
    bad = BadRecords()
    products = []
    for i, row in enumerate(_read_rows(manifest_dir / "products.parquet")):
        pid = row.get("product_id")
        if not isinstance(pid, str) or not pid:
            bad.add(f"products.parquet row {i}", "missing product_id", "manifest")
            continue
        products.append(Product(pid, *(clean_text(row.get(k) or "", pid) for k in ("title", "category", "description"))))
    samples = []
    for i, row in enumerate(_read_rows(manifest_dir / "samples.parquet")):
        record = row.get("sample_id") or f"samples.parquet row {i}"
        try:
            samples.append(_sample_from_row(row, record))
        except RecordError as e:
            bad.add_error(e, "manifest")
    return Catalog.build(root, products, samples, bad, name=meta.get("name", manifest_dir.name))


def _read_rows(path: Path) -> list[dict]:
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for damaged files
        raise ProdlensError(f"cannot read {path}: {e}") from e


def _sample_from_row(row: dict, record: str) -> Sample:
    def text(key: str) -> str:
        value = row.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise RecordError(record, f"column {key!r} is not text")
        return clean_text(value, record)

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
