"""Training data on frozen backbones: per-sample cached features, product-aware batches of cross-domain groups.

A *group* is one product seen in several domains: an anchor sample (a video or live sample, or an in-store photo)
plus one sample of the same product from each other domain (its product page, another clip...). A batch holds
P products × K groups; InfoNCE pairs the members of each group across domains.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from ..catalog import Catalog
from ..embed import ProductEmbedder
from ..errors import BadRecords
from ..model.network import DOMAIN_INDEX


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


Group = dict  # domain -> row index in the FeatureTable


class GroupBatcher:
    """Deterministic product-aware batches: every anchor once per epoch, P distinct products × K groups a batch."""

    def __init__(self, product_ids: list[str], domains: list[str], products_per_batch: int, groups_per_product: int,
                 seed: int = 0):
        self.P, self.K, self.seed = products_per_batch, groups_per_product, seed
        self.by_product: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, (pid, d) in enumerate(zip(product_ids, domains)):
            self.by_product[pid][d].append(i)
        present = set(domains)
        anchor_domains = present - {"page"} if present - {"page"} else present
        # only products seen in two or more domains can form cross-domain groups
        self.anchors = [i for i, (pid, d) in enumerate(zip(product_ids, domains))
                        if d in anchor_domains and len(self.by_product[pid]) >= 2]
        self.product_of = product_ids
        self.domain_of = domains

    def __len__(self) -> int:
        return self.steps_per_epoch()

    def steps_per_epoch(self) -> int:
        return max(1, -(-len(self.anchors) // (self.P * self.K)))

    def epoch(self, epoch: int) -> list[list[Group]]:
        rng = np.random.default_rng([self.seed, epoch])
        pieces: list[list[int]] = []
        per_product: dict[str, list[int]] = defaultdict(list)
        for i in self.anchors:
            per_product[self.product_of[i]].append(i)
        for pid in sorted(per_product):
            idx = rng.permutation(per_product[pid]).tolist()
            pieces += [idx[j:j + self.K] for j in range(0, len(idx), self.K)]
        order = rng.permutation(len(pieces))
        queue = [pieces[i] for i in order]
        batches: list[list[Group]] = []
        while queue:
            batch, used, rest = [], set(), []
            for piece in queue:
                pid = self.product_of[piece[0]]
                if len(used) < self.P and pid not in used:
                    used.add(pid)
                    batch += [self._group(a, rng) for a in piece]
                else:
                    rest.append(piece)
            batches.append(batch)
            queue = rest
        # The distinct-product rule can leave a tail of small batches; an epoch is exactly steps_per_epoch long
        # (the dropped tail is a different random set every epoch).
        return batches[: self.steps_per_epoch()]

    def _group(self, anchor: int, rng: np.random.Generator) -> Group:
        pid = self.product_of[anchor]
        group = {}
        for domain, rows in self.by_product[pid].items():
            group[domain] = anchor if domain == self.domain_of[anchor] else int(rows[rng.integers(len(rows))])
        return group


@dataclass
class Batch:
    frames: torch.Tensor
    frame_mask: torch.Tensor
    text: torch.Tensor
    has_text: torch.Tensor
    domain: torch.Tensor
    rows_by_domain: dict[str, torch.Tensor]  # (G,) row in this batch's sample tensors, -1 = group lacks the domain
    labels: torch.Tensor  # (G,) product index, -1 for padding groups
    rows: torch.Tensor  # (n,) FeatureTable row of each sample in the batch


def collate(table: FeatureTable, groups: list[Group], product_index: dict[str, int], domains: list[str],
            train: bool, generator: torch.Generator | None = None, frame_dropout: float = 0.0,
            text_dropout: float = 0.0) -> Batch:
    rows: list[int] = []
    position: dict[int, int] = {}
    rows_by_domain = {d: torch.full((len(groups),), -1, dtype=torch.long) for d in domains}
    labels = torch.full((len(groups),), -1, dtype=torch.long)
    for g, group in enumerate(groups):
        for domain, row in group.items():
            if row not in position:
                position[row] = len(rows)
                rows.append(row)
            rows_by_domain[domain][g] = position[row]
            labels[g] = product_index[table.product_ids[row]]
    idx = torch.tensor(rows, dtype=torch.long)
    n = len(rows)
    if train and table.views > 1:
        views = torch.randint(0, table.views, (n,), generator=generator)
    else:
        views = torch.zeros(n, dtype=torch.long)
    frames = table.frames[idx, views] if n else table.frames[:0, 0]
    mask = table.frame_mask[idx].clone()
    has_text = table.has_text[idx].clone()
    if train and frame_dropout > 0 and n:
        drop = torch.rand(mask.shape, generator=generator) < frame_dropout
        kept = mask & ~drop
        mask = torch.where(kept.any(dim=1, keepdim=True), kept, mask)  # never drop every frame of a clip
    if train and text_dropout > 0 and n:
        can_drop = mask.any(dim=1)  # keep the text of samples that have nothing else
        has_text = has_text & ~((torch.rand(n, generator=generator) < text_dropout) & can_drop)
    domain_ids = torch.tensor([DOMAIN_INDEX[table.domains[r]] for r in rows], dtype=torch.long)
    return Batch(frames, mask, table.text[idx], has_text, domain_ids, rows_by_domain, labels, idx)
