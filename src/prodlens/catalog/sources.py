"""One call loads a catalogue of any supported layout."""
from __future__ import annotations

from pathlib import Path

from ..errors import ProdlensError
from .config import SOURCES
from .folder import load_folder
from .grocery import load_grocery
from .manifest import load_manifest
from .rope import load_rope
from .schema import Catalog


def load_catalog(source: str, root: str | Path, split: str | None = None,
                 media_dir: str | Path | None = None) -> Catalog:
    """Load a catalogue from one of the supported layouts; `split` limits loading to that split where it can.
    `media_dir`: where ROPE's downloaded images are (default ROOT/media). For ROPE-sized catalogues import once
    (`import_rope`) and stream the manifest (`open_manifest`) instead of loading everything."""
    root = Path(root)
    if not root.exists():
        raise ProdlensError(f"catalogue root {root} does not exist")
    splits = (split,) if split else None
    if source == "grocery":
        catalog = load_grocery(root, splits)
    elif source == "rope":
        catalog = load_rope(root, splits, media_dir)
    elif source == "folder":
        catalog = load_folder(root)
    elif source == "manifest":
        catalog = load_manifest(root)
    else:
        raise ProdlensError(f"unknown catalogue source {source!r}; expected one of {', '.join(SOURCES)}")
    if split and catalog.splits and split not in catalog.splits:
        raise ProdlensError(f"split {split!r} not in this catalogue (it has: {', '.join(catalog.splits)})")
    return catalog.select(split) if split else catalog
