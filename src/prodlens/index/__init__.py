"""Vector index: FAISS (exact / HNSW / IVF-PQ) + item metadata + thumbnails, versioned and written atomically."""
from .build import catalog_info
from .store import Hit, IndexInfo, Item, ModelMismatch, ProductIndex
from .vectors import KINDS, IndexConfig, VectorIndex

__all__ = ["catalog_info", "Hit", "IndexInfo", "Item", "ModelMismatch", "ProductIndex", "KINDS", "IndexConfig",
           "VectorIndex"]
