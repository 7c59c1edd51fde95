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

from ..model.features import FeatureTable
from ..model.network import DOMAIN_INDEX


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


def batch_rows(groups: list[Group]) -> list[int]:
    """The table rows a batch of groups holds, each once, in the order `collate` stacks them."""
    seen: dict[int, None] = {}
    for group in groups:
        for row in group.values():
            seen.setdefault(row, None)
    return list(seen)


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
    frames = (table.frames[idx, views] if n else table.frames[:0, 0]).float()  # float16 when memory-mapped
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
    return Batch(frames, mask, table.text[idx].float(), has_text, domain_ids, rows_by_domain, labels, idx)
