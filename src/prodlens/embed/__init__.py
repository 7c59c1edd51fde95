"""Embedding: catalogue samples → L2-normalised vectors, cached by content hash and model."""
from ..cache import FeatureCache, default_cache_dir
from .embedder import EmbedConfig, FeatureExtractor, ProductEmbedder, SampleFeatures, model_id
from .store import Embeddings

__all__ = ["FeatureCache", "default_cache_dir", "EmbedConfig", "FeatureExtractor", "ProductEmbedder", "SampleFeatures",
           "Embeddings", "model_id"]
