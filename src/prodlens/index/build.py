"""Catalogue → index: the vectors, and the titles, categories, attributes and thumbnails that go beside them."""
from __future__ import annotations

import functools
import io

from PIL import Image

from ..catalog import Catalog
from ..embed import FeatureExtractor
from ..errors import RecordError
from ..progress import progress_bar
from .store import IndexInfo, ProductIndex

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
        if product is not None and product.attributes:
            info.attributes[s.sample_id] = dict(product.attributes)
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


def thumbnailer(catalog: Catalog, features: FeatureExtractor, size: int = 160):
    """sample_id → a small RGB thumbnail (the sample's middle frame), or None if it cannot be decoded."""
    by_id = {s.sample_id: s for s in catalog.samples}

    @functools.lru_cache(maxsize=1024)  # a report's grids show the same samples many times: decode each once
    def thumb(sample_id: str) -> Image.Image | None:
        s = by_id.get(sample_id)
        if s is None:
            return None
        try:
            frames = features.load_frames(catalog, s)
        except RecordError:  # undecodable media: no thumbnail; anything else is a bug and should surface
            return None
        img = frames[len(frames) // 2].copy()
        img.thumbnail((size, size))
        return img

    return thumb


def embed_into(index: ProductIndex | None, catalog: Catalog, model, features: FeatureExtractor, create=None,
               thumbnails: bool = True, progress: bool = True):
    """Embed every sample of `catalog` with `model` and add it to `index` (a sample indexed before is replaced), or
    `create(embeddings, info)` a new index when `index` is None. Returns (index, added, replaced, bad records);
    the caller saves."""
    embeddings = model.embed_catalog(catalog, progress=progress)
    thumb = thumbnailer(catalog, features, THUMBNAIL_SIZE) if thumbnails else None
    readings = features.readings(catalog, [s for s in catalog.samples if s.sample_id in set(embeddings.sample_ids)])
    info = catalog_info(catalog, thumb, embeddings.sample_ids, progress,
                        reads={sid: r.text for sid, r in readings.items() if r.text})
    if index is None:
        index = create(embeddings, info)
        return index, len(index), 0, embeddings.bad
    added, replaced = index.add(embeddings, info)
    return index, added, replaced, embeddings.bad
