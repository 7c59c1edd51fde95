"""Embedding: catalogue samples → L2-normalised vectors, cached by content hash and model."""
from ..cache import FeatureCache, default_cache_dir
from ..lazy import exports

_WHERE = {
    "config": ['EmbedConfig'],
    "embedder": ['FeatureExtractor', 'ProductEmbedder', 'SampleFeatures', 'model_id'],
    "store": ['Embeddings'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = ["FeatureCache", "default_cache_dir"] + [name for names in _WHERE.values() for name in names]
