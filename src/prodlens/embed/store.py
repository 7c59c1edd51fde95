"""Sample embeddings as a table: ids, product, domain, split and one L2-normalised float32 vector per sample."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..errors import BadRecords, ProdlensError


@dataclass
class Embeddings:
    sample_ids: list[str]
    product_ids: list[str]
    domains: list[str]
    splits: list[str | None]
    vectors: np.ndarray  # (N, D) float32, rows L2-normalised
    meta: dict = field(default_factory=dict)
    bad: BadRecords = field(default_factory=BadRecords)

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def where(self, mask) -> "Embeddings":
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        return Embeddings([self.sample_ids[i] for i in idx], [self.product_ids[i] for i in idx],
                          [self.domains[i] for i in idx], [self.splits[i] for i in idx],
                          self.vectors[idx], dict(self.meta), self.bad)

    def domain(self, name: str) -> "Embeddings":
        return self.where([d == name for d in self.domains])

    @classmethod
    def concat(cls, parts: list["Embeddings"], meta: dict | None = None) -> "Embeddings":
        bad = BadRecords()
        for p in parts:
            bad.extend(p.bad)
        dim = next((p.dim for p in parts if len(p)), 0)
        vectors = np.concatenate([p.vectors for p in parts if len(p)]) if any(len(p) for p in parts) else \
            np.zeros((0, dim), np.float32)
        return cls([x for p in parts for x in p.sample_ids], [x for p in parts for x in p.product_ids],
                   [x for p in parts for x in p.domains], [x for p in parts for x in p.splits], vectors,
                   dict(meta if meta is not None else (parts[0].meta if parts else {})), bad)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        table = pa.table({
            "sample_id": pa.array(self.sample_ids, pa.string()),
            "product_id": pa.array(self.product_ids, pa.string()),
            "domain": pa.array(self.domains, pa.string()),
            "split": pa.array(self.splits, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(self.vectors.astype(np.float32).reshape(-1)), self.dim or 1),
        })
        meta = {**self.meta, "bad_records": self.bad.as_dicts()}
        table = table.replace_schema_metadata({b"prodlens": json.dumps(meta).encode()})
        with atomic.atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Embeddings":
        """One Parquet file, or a directory of shards written by a sharded (distributed) embedding job."""
        path = Path(path)
        if path.is_dir():
            from .shards import load_shards

            return load_shards(path)
        try:
            table = pq.read_table(path)
        except Exception as e:
            raise ProdlensError(f"cannot read embeddings {path}: {e}") from e
        raw = (table.schema.metadata or {}).get(b"prodlens", b"{}")
        meta = json.loads(raw)
        bad = BadRecords()
        for b in meta.pop("bad_records", []):
            bad.add(b["record"], b["problem"], b.get("stage", ""))
        vec = table.column("vector").combine_chunks()
        vectors = vec.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1).astype(np.float32)
        return cls(table.column("sample_id").to_pylist(), table.column("product_id").to_pylist(),
                   table.column("domain").to_pylist(), table.column("split").to_pylist(), vectors, meta, bad)
