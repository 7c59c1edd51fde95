"""FAISS vector indexes over L2-normalised embeddings (inner product = cosine), with int64 ids.

Kinds:
- flat:  exact search (IndexFlatIP); the default below `exact_below` vectors.
- hnsw:  graph ANN (IndexHNSWFlat), fast and accurate, ~(4·d + 8·M) bytes per vector; removal by tombstones.
- ivfpq: inverted lists + product quantisation (IndexIVFPQ), a few dozen bytes per vector; needs training.
`auto` picks flat under `exact_below` vectors and hnsw above.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ProdlensError

KINDS = ("auto", "flat", "hnsw", "ivfpq")


def _faiss():
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a dependency
        raise ProdlensError("faiss is not installed: pip install faiss-cpu") from e
    return faiss


@dataclass
class IndexConfig:
    # where the vectors live: "faiss" (files in the index directory), "milvus://HOST:PORT" (a Milvus server or
    # cluster), "milvus-lite[:FILE.db]" (Milvus Lite, a local file; relative to the index directory)
    store: str = "faiss"
    kind: str = "auto"
    exact_below: int = 100_000  # auto: exact (flat) search below this many vectors
    hnsw_m: int = 32  # graph degree
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_lists: int = 0  # 0: about 4·sqrt(n)
    ivf_probe: int = 32
    pq_subquantizers: int = 0  # 0: dim / 2, i.e. dim/2 bytes per vector (must divide dim)
    pq_bits: int = 8
    subset_exact_fraction: float = 0.2  # filters keeping less than this share of an ANN index are searched exactly

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        if not (self.store == "faiss" or self.store.startswith("milvus://") or self.store.startswith("milvus-lite")):
            raise ValueError(f"index store must be faiss, milvus://HOST:PORT or milvus-lite[:FILE.db], got "
                             f"{self.store!r}")

    def resolve(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n < self.exact_below else "hnsw"

    def to_dict(self) -> dict:
        return asdict(self)


class VectorIndex:
    """One FAISS index with external int64 ids. `search` takes an optional allow-list of ids (a filter)."""

    def __init__(self, index, kind: str, config: IndexConfig, tombstones: set[int] | None = None):
        self.index = index
        self.kind = kind
        self.config = config
        self.tombstones: set[int] = set(tombstones or ())  # removed ids still in an HNSW graph

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, dim: int, config: IndexConfig, training: np.ndarray | None = None) -> "VectorIndex":
        faiss = _faiss()
        n = 0 if training is None else len(training)
        kind = config.resolve(n)
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = config.hnsw_ef_construction
            base.hnsw.efSearch = config.hnsw_ef_search
            index = faiss.IndexIDMap2(base)
        else:  # ivfpq: trained on the vectors it is built from
            if training is None or len(training) == 0:
                raise ProdlensError("an ivfpq index is trained on its first vectors: build it from a non-empty set")
            m = config.pq_subquantizers or max(1, dim // 2)
            if dim % m:
                raise ProdlensError(f"pq_subquantizers={m} must divide the embedding dimension {dim}")
            nbits = config.pq_bits
            while nbits > 4 and len(training) < 2 ** nbits * 39:  # FAISS wants ~39 points per PQ centroid
                nbits -= 1
            lists = config.ivf_lists or max(1, int(4 * np.sqrt(len(training))))
            lists = min(lists, max(1, len(training) // 8))
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, lists, m, nbits, faiss.METRIC_INNER_PRODUCT)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct / remove by arbitrary id
            index.nprobe = config.ivf_probe
            index.cp.min_points_per_centroid = index.pq.cp.min_points_per_centroid = 1  # quality: see bench/
            index.train(np.ascontiguousarray(training, dtype=np.float32))
        return cls(index, kind, config)

    # -- edits ----------------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def add(self, vectors: np.ndarray, ids: np.ndarray, fields: list[dict] | None = None) -> None:
        """`fields` (each item's domain and category) are for stores that filter by them; FAISS filters by ids."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ProdlensError(f"vectors of dimension {vectors.shape[-1]} cannot go into a {self.dim}-d index")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids):
            self.index.add_with_ids(vectors, ids)

    def remove(self, ids) -> None:
        ids = np.ascontiguousarray(list(ids), dtype=np.int64)
        if not len(ids):
            return
        if self.kind == "hnsw":  # HNSW graphs cannot delete nodes: hide them until the next rebuild
            self.tombstones.update(int(i) for i in ids)
        else:
            self.index.remove_ids(ids)

    def reconstruct(self, ids) -> np.ndarray:
        """Stored vectors of `ids` (approximate for ivfpq)."""
        ids = np.ascontiguousarray(list(ids), dtype=np.int64)
        return self.index.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim), np.float32)

    # -- search ---------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               where: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (Q, k); missing hits are id -1. `allowed`: only these ids may be returned (`where`, the
        same filter as (domains, categories), is for stores that filter by fields)."""
        faiss = _faiss()
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ProdlensError(f"query of dimension {q.shape[1]} against a {self.dim}-d index")
        total = int(self.index.ntotal)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if self.tombstones:
                allowed = allowed[~np.isin(allowed, np.fromiter(self.tombstones, np.int64))]
            if self.kind != "flat" and len(allowed) < self.config.subset_exact_fraction * total:
                return self._exact_subset(q, k, allowed)
            selector = faiss.IDSelectorBatch(allowed)
        elif self.tombstones:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.tombstones, np.int64)))
        else:
            selector = None
        params = self._params(selector)
        scores, ids = self.index.search(q, k, params=params) if params is not None else self.index.search(q, k)
        return scores, ids

    def _params(self, selector):
        faiss = _faiss()
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.config.hnsw_ef_search, 1))
        if self.kind == "ivfpq":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.config.ivf_probe)
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def _exact_subset(self, q: np.ndarray, k: int, allowed: np.ndarray):
        """A restrictive filter starves graph/IVF search; score its few allowed vectors exactly instead."""
        scores = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        if len(allowed) == 0:
            return scores, ids
        vectors = self.reconstruct(allowed)
        sims = q @ vectors.T
        top = np.argsort(-sims, axis=1)[:, :k]
        n = top.shape[1]
        scores[:, :n] = np.take_along_axis(sims, top, axis=1)
        ids[:, :n] = allowed[top]
        return scores, ids

    # -- persistence ----------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, kind: str, config: IndexConfig, tombstones=()) -> "VectorIndex":
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = config.hnsw_ef_search
        elif kind == "ivfpq":
            index.nprobe = config.ivf_probe
        return cls(index, kind, config, set(tombstones))

    def memory_bytes(self) -> int:
        """Size of the serialised index: what it occupies in RAM once loaded, to within small overheads."""
        return len(self.to_bytes())
