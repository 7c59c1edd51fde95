"""Vector index: FAISS (exact / HNSW / IVF-PQ) + item metadata + thumbnails, versioned and written atomically."""
from ..lazy import exports

_WHERE = {
    "build": ['catalog_info'],
    "store": ['Hit', 'IndexInfo', 'Item', 'ModelMismatch', 'ProductIndex'],
    "vectors": ['KINDS', 'IndexConfig', 'VectorIndex'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
