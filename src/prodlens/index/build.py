"""Catalogue → index: embed the chosen domains, attach titles, categories and thumbnails, write the index."""
from __future__ import annotations

import io

from ..catalog import Catalog
from ..errors import RecordError
from ..progress import progress_bar
from .store import IndexInfo

THUMBNAIL_SIZE = 192


def catalog_info(catalog: Catalog, frames_of, sample_ids: list[str], thumbnails: bool = True,
                 progress: bool = True) -> IndexInfo:
    """Titles and categories of the indexed samples, and a JPEG thumbnail (middle frame) of each.
    `frames_of(sample)` returns the sample's frames (e.g. `ProductEmbedder.load_frames` bound to the catalogue)."""
    by_id = {s.sample_id: s for s in catalog.samples}
    info = IndexInfo()
    wanted = [by_id[sid] for sid in sample_ids if sid in by_id]
    for s in wanted:
        product = catalog.products.get(s.product_id)
        info.titles[s.sample_id] = s.title or (product.title if product else "") or s.product_id
        info.categories[s.sample_id] = product.category if product else ""
    if not thumbnails:
        return info
    with progress_bar(len(wanted), "thumbnails", enabled=progress) as advance:
        for s in wanted:
            try:
                frames = frames_of(s)
            except RecordError:
                frames = []  # embedded from text alone: no picture to show
            if frames:
                img = frames[len(frames) // 2].copy()
                img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=85)
                info.thumbnails[s.sample_id] = buf.getvalue()
            advance(1)
    return info
