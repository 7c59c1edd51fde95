"""Milvus as the store of an index's vectors (`IndexConfig.store = "milvus://HOST:PORT"`, or `"milvus-lite"` /
`"milvus-lite:FILE.db"` for Milvus Lite, the same client and API in one local file).

The index directory keeps what it keeps with FAISS — CURRENT, each version's index.json, items.parquet, lexical
index, thumbnails — and the vectors live in one Milvus collection shared by every version. Each row carries the
version that added it and the version that removed it, so a reader of version v searches exactly its version
(`added <= v and removed > v`) while a writer prepares v + 1 beside it; nothing a reader sees changes until CURRENT
is swapped, as with FAISS. Removals older than the versions kept are deleted for good when a writer saves.

Edits before `save` are kept in memory (pending adds are searched exactly and merged in; pending removals are
filtered out), and written by `persist` under the index's writer lock with the new version's number.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ProdlensError
from .filters import milvus_expression, searchable
from .vectors import IndexConfig

NEVER = 2 ** 62  # `removed` of a live row
LITE_FILE = "milvus.db"


def _client(store: str, index_dir: Path):
    try:
        from pymilvus import MilvusClient
    except ImportError as e:
        raise ProdlensError("the milvus store needs pymilvus (and milvus-lite for a local file): "
                            "pip install pymilvus milvus-lite") from e
    if store.startswith("milvus://"):
        uri = "http://" + store[len("milvus://"):]
    elif store == "milvus-lite" or store.startswith("milvus-lite:"):
        name = store.partition(":")[2] or LITE_FILE
        path = Path(name) if Path(name).is_absolute() else index_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = str(path)
    else:
        raise ProdlensError(f"unknown index store {store!r}: faiss, milvus://HOST:PORT, milvus-lite[:FILE.db]")
    try:
        return MilvusClient(uri)
    except Exception as e:  # noqa: BLE001 - pymilvus raises many kinds; all mean "not reachable"
        raise ProdlensError(f"cannot reach Milvus at {uri}: {e}") from e


def _quote(values) -> str:
    return json.dumps([str(v) for v in values])


class MilvusVectors:
    """The vectors of one index version in a Milvus collection, with the VectorIndex interface ProductIndex uses."""

    kind = "milvus"

    def __init__(self, client, collection: str, dim: int, config: IndexConfig, version: int):
        self.client = client
        self.collection = collection
        self._dim = dim
        self.config = config
        self.version = version  # the version this reader sees
        self.tombstones: set[int] = set()  # Milvus deletes for real: nothing to hide
        self._pending_ids = np.zeros(0, np.int64)
        self._pending_vectors = np.zeros((0, dim), np.float32)
        self._pending_fields: list[dict] = []
        self._pending_removed: set[int] = set()
        self._count: int | None = None
        self.has_attributes = True  # rows carry the products' attributes (collections made before: no)

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, store: str, index_dir: Path, collection: str, dim: int, config: IndexConfig) -> "MilvusVectors":
        from pymilvus import DataType

        client = _client(store, index_dir)
        if client.has_collection(collection):
            raise ProdlensError(f"Milvus already holds a collection {collection!r}")
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("domain", DataType.VARCHAR, max_length=16)
        schema.add_field("category", DataType.VARCHAR, max_length=512)
        schema.add_field("added", DataType.INT64)
        schema.add_field("removed", DataType.INT64)
        schema.add_field("attributes", DataType.JSON)  # filters.searchable: folded strings and numbers
        params = client.prepare_index_params()
        kind = config.kind if config.kind != "auto" else "flat"  # exact until the collection is rebuilt larger
        if kind == "flat":
            params.add_index("vector", index_type="FLAT", metric_type="IP")
        elif kind == "hnsw":
            params.add_index("vector", index_type="HNSW", metric_type="IP",
                             params={"M": config.hnsw_m, "efConstruction": config.hnsw_ef_construction})
        else:
            raise ProdlensError(f"index kind {kind!r} is not offered with the milvus store (flat or hnsw)")
        client.create_collection(collection, schema=schema, index_params=params)
        return cls(client, collection, dim, config, version=0)

    @classmethod
    def open(cls, store: str, index_dir: Path, collection: str, dim: int, config: IndexConfig,
             version: int) -> "MilvusVectors":
        client = _client(store, index_dir)
        if not client.has_collection(collection):
            raise ProdlensError(f"the index's Milvus collection {collection!r} is gone from {store}")
        client.load_collection(collection)
        vectors = cls(client, collection, dim, config, version)
        fields = client.describe_collection(collection).get("fields", [])
        vectors.has_attributes = any(f.get("name") == "attributes" for f in fields)
        return vectors

    # -- edits (pending until persist) ----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        if self._count is None:
            rows = self.client.query(self.collection, filter=self._visible(), output_fields=["count(*)"])
            self._count = int(rows[0]["count(*)"]) if rows else 0
        return self._count + len(self._pending_ids) - len(self._pending_removed)

    def add(self, vectors: np.ndarray, ids: np.ndarray, fields: list[dict] | None = None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ProdlensError(f"vectors of dimension {vectors.shape[-1]} cannot go into a {self.dim}-d index")
        self._pending_ids = np.concatenate([self._pending_ids, np.asarray(ids, np.int64)])
        self._pending_vectors = np.concatenate([self._pending_vectors, vectors])
        self._pending_fields += fields or [{"domain": "", "category": ""}] * len(vectors)

    def remove(self, ids) -> None:
        ids = {int(i) for i in ids}
        pending = np.isin(self._pending_ids, list(ids))
        if pending.any():  # added and removed before any save: never written
            ids -= set(self._pending_ids[pending].tolist())
            keep = ~pending
            self._pending_ids, self._pending_vectors = self._pending_ids[keep], self._pending_vectors[keep]
            self._pending_fields = [f for f, k in zip(self._pending_fields, keep) if k]
        self._pending_removed |= ids

    def reconstruct(self, ids) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        found = {int(i): v for i, v in zip(self._pending_ids, self._pending_vectors)}
        wanted = [i for i in ids if i not in found]
        for start in range(0, len(wanted), 1000):
            rows = self.client.get(self.collection, ids=wanted[start:start + 1000], output_fields=["vector"])
            found.update({int(r["id"]): np.asarray(r["vector"], np.float32) for r in rows})
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(missing[0])
        return np.stack([found[i] for i in ids])

    # -- search ---------------------------------------------------------------------------------------------------
    def _visible(self, version: int | None = None) -> str:
        v = self.version if version is None else version
        return f"added <= {v} and removed > {v}"

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               where: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (Q, k), missing hits id -1. `where` = (domains, categories[, attribute conditions]) is
        pushed down to Milvus as a filter expression (attribute conditions on the rows' attributes JSON; in a
        collection made before it had one, as the ids they allow); `allowed` (the same filter as ids) filters the
        pending adds."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ProdlensError(f"query of dimension {q.shape[1]} against a {self.dim}-d index")
        expr = [self._visible()]
        domains, categories, conditions = (*(where or ()), None, None, None)[:3]
        if domains:
            expr.append(f"domain in {_quote(domains)}")
        if categories:
            expr.append(f"category in {_quote(categories)}")
        if conditions and self.has_attributes:
            expr.append(milvus_expression(conditions))
        elif conditions and allowed is not None:  # a collection without attributes: the ids the filter allows
            expr.append(f"id in {json.dumps([int(i) for i in allowed])}")
        fetch = k + len(self._pending_removed)
        params = {"metric_type": "IP"}
        if self.config.kind == "hnsw":
            params["params"] = {"ef": max(self.config.hnsw_ef_search, fetch)}
        results = self.client.search(self.collection, data=q.tolist(), limit=max(1, fetch),
                                     filter=" and ".join(expr), output_fields=["id"], search_params=params)
        scores = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        pending = self._pending_ids
        if allowed is not None and len(pending):
            mask = np.isin(pending, allowed)
            pending, pending_vectors = pending[mask], self._pending_vectors[mask]
        else:
            pending_vectors = self._pending_vectors
        for n, hits in enumerate(results):
            found = [(float(h["distance"]), int(h["id"])) for h in hits if int(h["id"]) not in self._pending_removed]
            if len(pending):
                found += list(zip((pending_vectors @ q[n]).tolist(), pending.tolist()))
            found.sort(key=lambda sid: -sid[0])
            for j, (score, i) in enumerate(found[:k]):
                scores[n, j], ids[n, j] = score, i
        return scores, ids

    # -- persistence ----------------------------------------------------------------------------------------------
    def persist(self, version: int, keep_versions: int) -> None:
        """Write the pending edits as `version` (the caller holds the index's writer lock and swaps CURRENT after,
        then calls `committed`), first undoing what a save of `version` or later that never reached CURRENT left
        behind (a crashed writer's, or this one's failed attempt: the edits stay pending until committed)."""
        c, name = self.client, self.collection
        c.delete(name, filter=f"added >= {version}")
        stale = c.query(name, filter=f"removed >= {version} and removed < {NEVER}", output_fields=["*"])
        if stale:
            c.upsert(name, [{**r, "removed": NEVER} for r in stale])
        rows = [{"id": int(i), "vector": v.tolist(), "domain": f.get("domain", ""), "category": f.get("category", ""),
                 "added": version, "removed": NEVER,
                 **({"attributes": searchable(f.get("attributes") or {})} if self.has_attributes else {})}
                for i, v, f in zip(self._pending_ids, self._pending_vectors, self._pending_fields)]
        for start in range(0, len(rows), 1000):
            c.insert(name, rows[start:start + 1000])
        removed = sorted(self._pending_removed)
        for start in range(0, len(removed), 1000):
            gone = c.get(name, ids=removed[start:start + 1000], output_fields=["*"])
            if gone:
                c.upsert(name, [{**r, "removed": version} for r in gone])
        c.delete(name, filter=f"removed <= {version - keep_versions + 1}")  # no kept version can see these
        c.flush(name)

    def committed(self, version: int) -> None:
        """CURRENT names `version` now: this is its reader, with nothing pending."""
        self.version = version
        self._pending_ids = np.zeros(0, np.int64)
        self._pending_vectors = np.zeros((0, self.dim), np.float32)
        self._pending_fields, self._pending_removed, self._count = [], set(), None

    def drop(self) -> None:
        self.client.drop_collection(self.collection)
