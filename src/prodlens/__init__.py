"""prodlens: one embedding space for products shown as pages, short videos and live streams.

    import prodlens
    catalog = prodlens.load_catalog("folder", "my-catalogue")
    encoder = prodlens.load_encoder()                 # zero-shot default; or a trained run directory
    embeddings = encoder.embed_catalog(catalog)
    vectors = encoder.encode(texts=["oat milk 1 l"], domain="page")

Names are imported on first use, so `import prodlens` stays cheap (no torch, no models) until one is needed.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "catalog": ["Catalog", "ManifestView", "Product", "Sample", "import_rope", "load_catalog", "open_manifest",
                "validate_catalog"],
    "embed": ["EmbedConfig", "Embeddings", "FeatureCache", "ProductEmbedder"],
    "embed.encoder": ["ProductEncoder"],
    "model": ["CheckpointEmbedder", "load_encoder"],
    "errors": ["BadRecord", "BadRecords", "MediaError", "ProdlensError", "RecordError"],
    "evaluate": ["EvalResult", "evaluate_embeddings", "print_results", "write_report"],
    "api": ["index_catalog"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'prodlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
