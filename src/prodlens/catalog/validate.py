"""Full validation of a catalogue: record shape (done at load time) plus every media file decoded."""
from __future__ import annotations

from ..errors import BadRecords, MediaError, RecordError
from ..media import DEFAULT_FRAMES, load_image, sample_frames
from ..progress import progress_bar
from .manifest import ManifestView
from .schema import Catalog


def validate_catalog(catalog: Catalog, check_media: bool = True, frames: int = DEFAULT_FRAMES, progress: bool = True) -> BadRecords:
    """Every problem found, each naming its record: load-time problems first, then undecodable media."""
    bad = BadRecords()
    bad.extend(catalog.bad)
    for s in catalog.samples:
        if not (s.title or s.text or s.asr_text) and s.domain == "page" and not catalog.products[s.product_id].title:
            bad.add(s.sample_id, "page has no title or description text", "validate")
    if not check_media:
        return bad
    with progress_bar(len(catalog.samples), "checking media", enabled=progress) as advance:
        for s in catalog.samples:
            try:
                if s.video:
                    sample_frames(catalog.path(s.video, s.sample_id), frames, s.sample_id)
                for rel in s.images:
                    load_image(catalog.path(rel, s.sample_id), s.sample_id)
            except (MediaError, RecordError) as e:
                bad.add_error(e, "media")
            advance(1)
    return bad


def validate_manifest(view: ManifestView, check_media: bool = True, frames: int = DEFAULT_FRAMES, batch_rows: int = 4096,
                      progress: bool = True) -> tuple[BadRecords, int]:
    """The same checks over a manifest, a batch at a time (memory bounded by the batch): (bad records, samples)."""
    bad, count = BadRecords(), 0
    with progress_bar(view.count(), "validating", enabled=progress) as advance:
        for samples in view.iter_samples(batch_rows, bad=bad):
            batch_bad = BadRecords()
            bad.extend(validate_catalog(view.catalog_of(samples, batch_bad), check_media, frames, progress=False))
            count += len(samples)
            advance(len(samples))
    return bad, count
