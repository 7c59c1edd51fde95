"""Backbone features of samples packed for the network: per sample up to `max_frames` frame features (one set per
augmented view) and a text feature, from the feature cache where possible."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import torch

from ..catalog import Catalog, ManifestView, Sample
from ..embed import FeatureExtractor
from ..errors import BadRecords
from ..progress import progress_bar
from .network import DOMAIN_INDEX


MEDIA_SCHEMA = pa.schema([("sample_id", pa.string()), ("video", pa.string()), ("images", pa.list_(pa.string()))])


@dataclass
class FeatureTable:
    """Backbone features of every usable sample: `frames[i, view]` is (max_frames, D) padded. In memory (float32),
    or memory-mapped from disk (float16) for tables too large for it (see build_feature_table). `media` says where
    row i's pixels are (for the backbone-in-the-loop modes): a table in memory, or the path of an Arrow file."""

    sample_ids: list[str]
    product_ids: list[str]
    domains: list[str]
    splits: list[str | None]
    frames: torch.Tensor  # (N, V, F, Dv) float32, or float16 on disk
    frame_mask: torch.Tensor  # (N, F) bool
    text: torch.Tensor  # (N, Dt) float32, or float16 on disk
    has_text: torch.Tensor  # (N,) bool
    bad: BadRecords
    media: pa.Table | Path | None = None  # MEDIA_SCHEMA rows aligned with the table's rows
    root: Path | None = None  # the catalogue root media paths are relative to
    read: torch.Tensor | None = None  # (N, R) float16 trigram vectors of the text read in the pictures, if read

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def views(self) -> int:
        return int(self.frames.shape[1])

    def domain_ids(self) -> torch.Tensor:
        return torch.tensor([DOMAIN_INDEX[d] for d in self.domains], dtype=torch.long)

    def media_row(self, row: int) -> Sample:
        """Where row `row`'s pixels are, as a Sample with its media fields only. A media table on disk is
        memory-mapped on first use (by each process that reads it)."""
        return media_sample(self._media_table(), row)

    def _media_table(self) -> pa.Table:
        if isinstance(self.media, Path):
            if self.__dict__.get("_mapped_media") is None:
                self.__dict__["_mapped_media"] = open_media(self.media)
            return self.__dict__["_mapped_media"]
        return self.media

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_mapped_media", None)  # each process maps the file itself, nothing is copied
        return state


def open_media(path: Path) -> pa.Table:
    """A media table written to disk, memory-mapped (never read into the process)."""
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def media_sample(media: pa.Table, row: int) -> Sample:
    record = media.slice(row, 1).to_pylist()[0]
    return Sample(record["sample_id"], "", "", images=tuple(record["images"] or ()), video=record["video"])


DISK_TABLE_BYTES = 2 << 30  # a table larger than this lives in memory-mapped files, not in the process's memory


def build_feature_table(source: Catalog | ManifestView, embedder: FeatureExtractor, max_frames: int, views: int = 1,
                        progress: bool = True, disk_dir: Path | None = None, chunk: int = 1024,
                        disk_over_bytes: int | None = None) -> FeatureTable:
    """Backbone features for `views` looks at every sample (view 0 = plain), from the feature cache when possible.

    Built `chunk` samples at a time, from a catalogue in memory or streamed from a manifest (ManifestView). A table
    whose frame features would take more than `disk_over_bytes` is written to memory-mapped float16 files in
    `disk_dir` (with its rows' media paths in an Arrow file beside them) instead of memory: batches then read their
    rows from there, and the operating system's page cache, not the process, holds what is hot."""
    streamed = isinstance(source, ManifestView)
    total = source.count() if streamed else len(source.samples)
    bad = BadRecords()
    frames = mask = text = has_text = read = None
    on_disk = False
    reads = embedder.config.ocr != "none"
    kept_ids, kept_products, kept_domains, kept_splits = [], [], [], []
    media_rows: list[dict] = []
    media_writer = None
    with progress_bar(total, "feature table", enabled=progress and total > chunk) as advance:
        for catalog, part in _chunks(source, chunk, bad):
            feats, part_bad = embedder.sample_features(catalog, part, progress=progress and total <= chunk)
            bad.extend(part_bad)
            extra = []
            for v in range(1, views):
                fv, view_bad = embedder.sample_features(catalog, part, progress=False, view=v)
                reported = bad.records()
                for b in view_bad:  # the plain view already reports what the media itself gets wrong
                    if b.record not in reported:
                        bad.add(b.record, f"augmented view {v}: {b.problem}", b.stage)
                extra.append(fv)
            usable = [s for s in part if s.sample_id in feats and
                      (feats[s.sample_id].visual is not None or feats[s.sample_id].text is not None)]
            if frames is None:
                dv = next((feats[s.sample_id].visual.shape[1] for s in usable if feats[s.sample_id].visual is not None),
                          0) or embedder.image_encoder.dim
                dt = next((feats[s.sample_id].text.shape[0] for s in usable if feats[s.sample_id].text is not None),
                          0) or embedder.text_encoder.dim
                limit = DISK_TABLE_BYTES if disk_over_bytes is None else disk_over_bytes
                on_disk = disk_dir is not None and total * views * max_frames * dv * 4 > limit
                frames, mask, text, has_text = _allocate(total, views, max_frames, dv, dt,
                                                         disk_dir if on_disk else None)
                if reads:
                    read = _array(disk_dir if on_disk else None, "read", (total, embedder.read_encoder.dim))
                if on_disk:
                    media_writer = pa.ipc.new_file(str(Path(disk_dir) / "media.arrow"), MEDIA_SCHEMA)
            for s in usable:
                i = len(kept_ids)
                f = feats[s.sample_id]
                if f.visual is not None:
                    k = min(len(f.visual), max_frames)
                    mask[i, :k] = True
                    frames[i, 0, :k] = torch.from_numpy(np.asarray(f.visual[:k], dtype=np.float32))
                    for v, fv in enumerate(extra, start=1):
                        other = fv.get(s.sample_id)
                        src = other.visual if other is not None and other.visual is not None else f.visual
                        kk = min(len(src), k)
                        frames[i, v, :kk] = torch.from_numpy(np.asarray(src[:kk], dtype=np.float32))
                if f.text is not None:
                    text[i] = torch.from_numpy(np.asarray(f.text, dtype=np.float32))
                    has_text[i] = True
                if read is not None and f.read is not None:
                    read[i] = torch.from_numpy(f.read)
                kept_ids.append(s.sample_id)
                kept_products.append(s.product_id)
                kept_domains.append(s.domain)
                kept_splits.append(s.split)
            rows = [{"sample_id": s.sample_id, "video": s.video, "images": list(s.images)} for s in usable]
            if media_writer is not None:
                media_writer.write_table(pa.Table.from_pylist(rows, schema=MEDIA_SCHEMA))
            else:
                media_rows += rows
            advance(len(part))
    if media_writer is not None:
        media_writer.close()
    if frames is None:
        dv, dt = embedder.image_encoder.dim, embedder.text_encoder.dim
        frames, mask, text, has_text = _allocate(0, views, max_frames, dv, dt, None)
        read = _array(None, "read", (0, embedder.read_encoder.dim)) if reads else None
    n = len(kept_ids)
    media = Path(disk_dir) / "media.arrow" if media_writer is not None else \
        pa.Table.from_pylist(media_rows, schema=MEDIA_SCHEMA)
    return FeatureTable(kept_ids, kept_products, kept_domains, kept_splits, frames[:n], mask[:n], text[:n],
                        has_text[:n], bad, media, Path(source.root), read[:n] if read is not None else None)


def _chunks(source: Catalog | ManifestView, chunk: int, bad: BadRecords) -> Iterator[tuple[Catalog, list[Sample]]]:
    """(catalogue, its samples) a chunk at a time: slices of a catalogue in memory, or batches of a manifest."""
    if isinstance(source, ManifestView):
        for samples in source.iter_samples(chunk, bad=bad):
            catalog = source.catalog_of(samples, bad)
            yield catalog, catalog.samples
    else:
        for start in range(0, len(source.samples), chunk):
            yield source, source.samples[start:start + chunk]


def _allocate(n: int, views: int, max_frames: int, dv: int, dt: int, disk_dir: Path | None):
    if disk_dir is None:
        return (torch.zeros((n, views, max_frames, dv), dtype=torch.float32),
                torch.zeros((n, max_frames), dtype=torch.bool), torch.zeros((n, dt), dtype=torch.float32),
                torch.zeros(n, dtype=torch.bool))
    return (_array(disk_dir, "frames", (n, views, max_frames, dv)), _array(disk_dir, "frame_mask", (n, max_frames), bool),
            _array(disk_dir, "text", (n, dt)), _array(disk_dir, "has_text", (n,), bool))


def _array(disk_dir: Path | None, name: str, shape: tuple, dtype=np.float16) -> torch.Tensor:
    """A zeroed array of the table: in memory, or a memory-mapped file in `disk_dir`."""
    if disk_dir is None:
        return torch.zeros(shape, dtype=torch.bool if dtype is bool else torch.float16)
    Path(disk_dir).mkdir(parents=True, exist_ok=True)
    array = np.lib.format.open_memmap(Path(disk_dir) / f"{name}.npy", mode="w+",
                                      dtype=np.bool_ if dtype is bool else dtype, shape=shape)
    return torch.from_numpy(array)
