"""Catalogue: products and their samples in the page / video / live domains, and the loaders that build it."""
from ..lazy import exports

_WHERE = {
    "config": ["SOURCES"],
    "folder": ["load_folder"],
    "grocery": ["load_grocery"],
    "manifest": ["ManifestView", "is_manifest_dir", "load_manifest", "open_manifest", "save_manifest"],
    "rope": ["ImportReport", "import_rope", "load_rope"],
    "schema": ["DOMAINS", "Catalog", "Product", "Sample"],
    "sources": ["load_catalog"],
    "validate": ["validate_catalog"],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
