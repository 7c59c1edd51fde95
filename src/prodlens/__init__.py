"""prodlens: one embedding space for products shown as pages, short videos and live streams.

    from prodlens import load_catalog, ProductEmbedder, EmbedConfig, evaluate_embeddings
"""
from .catalog import Catalog, Product, Sample, load_catalog, validate_catalog
from .embed import EmbedConfig, Embeddings, FeatureCache, ProductEmbedder, embed_catalog
from .errors import BadRecord, BadRecords, MediaError, ProdlensError, RecordError
from .evaluate import EvalResult, evaluate_embeddings, print_results, write_report

__version__ = "0.1.0"

__all__ = ["Catalog", "Product", "Sample", "load_catalog", "validate_catalog", "EmbedConfig", "Embeddings",
           "FeatureCache", "ProductEmbedder", "embed_catalog", "BadRecord", "BadRecords", "MediaError",
           "ProdlensError", "RecordError", "EvalResult", "evaluate_embeddings", "print_results", "write_report"]
