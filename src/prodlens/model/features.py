"""Backbone features of samples packed for the network: per sample up to `max_frames` frame features (one set per
augmented view) and a text feature, from the feature cache where possible."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..catalog import Catalog
from ..embed import ProductEmbedder
from ..errors import BadRecords
from .network import DOMAIN_INDEX


@dataclass
class FeatureTable:
    """Backbone features of every usable sample, in memory: `frames[i, view]` is (max_frames, D) padded."""

    sample_ids: list[str]
    product_ids: list[str]
    domains: list[str]
    splits: list[str | None]
    frames: torch.Tensor  # (N, V, F, Dv) float32
    frame_mask: torch.Tensor  # (N, F) bool
    text: torch.Tensor  # (N, Dt) float32
    has_text: torch.Tensor  # (N,) bool
    bad: BadRecords

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def views(self) -> int:
        return int(self.frames.shape[1])

    def domain_ids(self) -> torch.Tensor:
        return torch.tensor([DOMAIN_INDEX[d] for d in self.domains], dtype=torch.long)


def build_feature_table(catalog: Catalog, embedder: ProductEmbedder, max_frames: int, views: int = 1,
                        progress: bool = True) -> FeatureTable:
    """Backbone features for `views` looks at every sample (view 0 = plain), from the feature cache when possible."""
    feats, bad = embedder.sample_features(catalog, progress=progress)
    extra_views = []
    for v in range(1, views):
        fv, bad_v = embedder.sample_features(catalog, progress=progress, view=v)
        extra_views.append(fv)
    samples = [s for s in catalog.samples
               if s.sample_id in feats and (feats[s.sample_id].visual is not None or feats[s.sample_id].text is not None)]
    n = len(samples)
    dv = next((feats[s.sample_id].visual.shape[1] for s in samples if feats[s.sample_id].visual is not None), 0)
    dt = next((feats[s.sample_id].text.shape[0] for s in samples if feats[s.sample_id].text is not None), 0)
    dv = dv or embedder.image_encoder.dim
    dt = dt or embedder.text_encoder.dim
    frames = torch.zeros((n, views, max_frames, dv), dtype=torch.float32)
    mask = torch.zeros((n, max_frames), dtype=torch.bool)
    text = torch.zeros((n, dt), dtype=torch.float32)
    has_text = torch.zeros(n, dtype=torch.bool)
    for i, s in enumerate(samples):
        f = feats[s.sample_id]
        if f.visual is not None:
            k = min(len(f.visual), max_frames)
            mask[i, :k] = True
            frames[i, 0, :k] = torch.from_numpy(np.asarray(f.visual[:k], dtype=np.float32))
            for v, fv in enumerate(extra_views, start=1):
                other = fv.get(s.sample_id)
                src = other.visual if other is not None and other.visual is not None else f.visual
                kk = min(len(src), k)
                frames[i, v, :kk] = torch.from_numpy(np.asarray(src[:kk], dtype=np.float32))
        if f.text is not None:
            text[i] = torch.from_numpy(np.asarray(f.text, dtype=np.float32))
            has_text[i] = True
    return FeatureTable([s.sample_id for s in samples], [s.product_id for s in samples],
                        [s.domain for s in samples], [s.split for s in samples], frames, mask, text, has_text, bad)
