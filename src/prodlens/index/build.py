"""Catalogue → index: the titles, categories and thumbnails that go beside the indexed vectors."""
from __future__ import annotations

import io

from ..catalog import Catalog
from ..progress import progress_bar
from .store import IndexInfo

THUMBNAIL_SIZE = 192


def lexical_text(sample, product) -> str:
    """What lexical search matches a sample by: its own title and text, its product's title, category and (for a
    page) description. Not a clip's raw transcript: a speaker naming another brand would then match it word for word
    (the attack the speech defences of prodlens.text exist for)."""
    parts = [sample.title, sample.text]
    if product is not None:
        parts += [product.title, product.category] + ([product.description] if sample.domain == "page" else [])
    seen, out = set(), []
    for part in parts:
        part = (part or "").strip()
        if part and part not in seen:
            seen.add(part)
            out.append(part)
    return " \n".join(out)


def catalog_info(catalog: Catalog, thumbnail, sample_ids: list[str], progress: bool = True,
                 reads: dict[str, str] | None = None) -> IndexInfo:
    """Titles and categories of the indexed samples, and a JPEG thumbnail of each. `thumbnail(sample_id)` returns a
    small PIL image or None (e.g. `prodlens.api.thumbnailer`); None when thumbnails are not wanted. `reads`: the
    text OCR read in each sample's pictures (an indexed field of its own)."""
    by_id = {s.sample_id: s for s in catalog.samples}
    info = IndexInfo(reads=dict(reads or {}))
    wanted = [by_id[sid] for sid in sample_ids if sid in by_id]
    for s in wanted:
        product = catalog.products.get(s.product_id)
        info.titles[s.sample_id] = s.title or (product.title if product else "") or s.product_id
        info.categories[s.sample_id] = product.category if product else ""
        info.texts[s.sample_id] = lexical_text(s, product)
    if thumbnail is None:
        return info
    with progress_bar(len(wanted), "thumbnails", enabled=progress) as advance:
        for s in wanted:
            img = thumbnail(s.sample_id)
            if img is not None:  # None: embedded from text alone, or undecodable: no picture to show
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=85)
                info.thumbnails[s.sample_id] = buf.getvalue()
            advance(1)
    return info
