"""Backbone features of samples packed for the network: per sample up to `max_frames` frame features (one set per
augmented view) and a text feature, from the feature cache where possible."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..catalog import Catalog
from ..embed import ProductEmbedder
from ..errors import BadRecords
from ..progress import progress_bar
from .network import DOMAIN_INDEX


@dataclass
class FeatureTable:
    """Backbone features of every usable sample: `frames[i, view]` is (max_frames, D) padded. In memory (float32),
    or memory-mapped from disk (float16) for tables too large for it (see build_feature_table)."""

    sample_ids: list[str]
    product_ids: list[str]
    domains: list[str]
    splits: list[str | None]
    frames: torch.Tensor  # (N, V, F, Dv) float32, or float16 on disk
    frame_mask: torch.Tensor  # (N, F) bool
    text: torch.Tensor  # (N, Dt) float32, or float16 on disk
    has_text: torch.Tensor  # (N,) bool
    bad: BadRecords

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def views(self) -> int:
        return int(self.frames.shape[1])

    def domain_ids(self) -> torch.Tensor:
        return torch.tensor([DOMAIN_INDEX[d] for d in self.domains], dtype=torch.long)


DISK_TABLE_BYTES = 2 << 30  # a table larger than this lives in memory-mapped files, not in the process's memory


def build_feature_table(catalog: Catalog, embedder: ProductEmbedder, max_frames: int, views: int = 1,
                        progress: bool = True, disk_dir: Path | None = None, chunk: int = 1024,
                        disk_over_bytes: int | None = None) -> FeatureTable:
    """Backbone features for `views` looks at every sample (view 0 = plain), from the feature cache when possible.

    Built `chunk` samples at a time. A table whose frame features would take more than `disk_over_bytes` is written
    to memory-mapped float16 files in `disk_dir` instead of memory: batches then read their rows from there, and
    the operating system's page cache, not the process, holds what is hot."""
    samples = list(catalog.samples)
    bad = BadRecords()
    frames = mask = text = has_text = None
    kept: list = []
    with progress_bar(len(samples), "feature table", enabled=progress and len(samples) > chunk) as advance:
        for start in range(0, len(samples), chunk):
            part = samples[start:start + chunk]
            feats, part_bad = embedder.sample_features(catalog, part, progress=progress and len(samples) <= chunk)
            bad.extend(part_bad)
            extra = []
            for v in range(1, views):
                fv, _ = embedder.sample_features(catalog, part, progress=False, view=v)
                extra.append(fv)
            usable = [s for s in part if s.sample_id in feats and
                      (feats[s.sample_id].visual is not None or feats[s.sample_id].text is not None)]
            if frames is None:
                dv = next((feats[s.sample_id].visual.shape[1] for s in usable if feats[s.sample_id].visual is not None),
                          0) or embedder.image_encoder.dim
                dt = next((feats[s.sample_id].text.shape[0] for s in usable if feats[s.sample_id].text is not None),
                          0) or embedder.text_encoder.dim
                limit = DISK_TABLE_BYTES if disk_over_bytes is None else disk_over_bytes
                on_disk = disk_dir is not None and len(samples) * views * max_frames * dv * 4 > limit
                frames, mask, text, has_text = _allocate(len(samples), views, max_frames, dv, dt,
                                                         disk_dir if on_disk else None)
            for s in usable:
                i = len(kept)
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
                kept.append(s)
            advance(len(part))
    if frames is None:
        dv, dt = embedder.image_encoder.dim, embedder.text_encoder.dim
        frames, mask, text, has_text = _allocate(0, views, max_frames, dv, dt, None)
    n = len(kept)
    return FeatureTable([s.sample_id for s in kept], [s.product_id for s in kept], [s.domain for s in kept],
                        [s.split for s in kept], frames[:n], mask[:n], text[:n], has_text[:n], bad)


def _allocate(n: int, views: int, max_frames: int, dv: int, dt: int, disk_dir: Path | None):
    if disk_dir is None:
        return (torch.zeros((n, views, max_frames, dv), dtype=torch.float32),
                torch.zeros((n, max_frames), dtype=torch.bool), torch.zeros((n, dt), dtype=torch.float32),
                torch.zeros(n, dtype=torch.bool))
    disk_dir = Path(disk_dir)
    disk_dir.mkdir(parents=True, exist_ok=True)

    def mapped(name: str, shape: tuple, dtype) -> torch.Tensor:
        array = np.lib.format.open_memmap(disk_dir / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        return torch.from_numpy(array)

    return (mapped("frames", (n, views, max_frames, dv), np.float16), mapped("frame_mask", (n, max_frames), np.bool_),
            mapped("text", (n, dt), np.float16), mapped("has_text", (n,), np.bool_))
