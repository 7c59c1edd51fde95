"""Training with the image backbone in the loop: `recompute` (frozen, features recomputed every step from
augmented pixels), `partial` (the top blocks are trained on cached lower-backbone activations, see
`activations.py`) and `finetune` (the whole backbone is trained from pixels; meant for GPUs).

Pixels are never held for the catalogue: `FrameSource` decodes a sample's frames when a step asks for them, in
DataLoader worker processes that run ahead of the step (`train.loader_workers`), and each random crop / flip /
colour jitter is drawn from a seed of (run seed, step, sample), so a resumed run sees the same pixels as an
uninterrupted one. Any image encoder `prodlens.encoders.tunable` can split works: EfficientNet-Lite0 and
transformers vision models (ViT, DINOv2, CLIP / SigLIP vision towers).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..embed.embedder import load_sample_frames
from ..encoders.tunable import TunableBackbone, pixels_of, tunable_backbone
from ..errors import RecordError
from ..media import random_view
from ..model.features import FeatureTable, media_sample, open_media


class FrameSource(torch.utils.data.Dataset):
    """Frames of a FeatureTable's rows, decoded on demand from the media its `media` table names. An item is
    (row, seed, train) → uint8 pixels (max_frames, 3, size, size), zero where a sample has fewer frames: a random
    view (crop of 64–100% of the area, flip, colour jitter) when training, the centre crop otherwise. A media table
    on disk is memory-mapped by each worker process when it first needs it (never copied into the workers)."""

    def __init__(self, table: FeatureTable, frames: int, max_frames: int, size: int = 224):
        self.root = Path(table.root)
        self.media = table.media
        self.count = len(table)
        self.frames, self.max_frames, self.size = frames, max_frames, size
        self._mapped = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mapped"] = None  # each process maps the file itself
        return state

    def __len__(self) -> int:
        return self.count

    def _media(self):
        if isinstance(self.media, Path):
            if self._mapped is None:
                self._mapped = open_media(self.media)
            return self._mapped
        return self.media

    def __getitem__(self, key: tuple[int, int, bool]) -> torch.Tensor:
        row, seed, train = key
        try:
            images = load_sample_frames(self.root, media_sample(self._media(), row), self.frames)[: self.max_frames]
        except RecordError:
            images = []  # a sample with text only (or whose media broke since): no pixels
        rng = np.random.default_rng(seed)
        out = torch.zeros((self.max_frames, 3, self.size, self.size), dtype=torch.uint8)
        if images:
            out[: len(images)] = pixels_of([random_view(img, rng) if train else img for img in images], self.size)
        return out


def pixel_batches(source: FrameSource, steps: list[list[int]], seeds: list[int], train: bool,
                  workers: int) -> Iterator[torch.Tensor]:
    """Pixels (n, F, 3, crop, crop) of each step's rows, in step order, decoded by `workers` DataLoader processes
    ahead of the step that needs them (0: in this process)."""
    keys = [[(row, seed * 1_000_003 + i, train) for i, row in enumerate(rows)] for rows, seed in zip(steps, seeds)]
    loader = torch.utils.data.DataLoader(source, batch_sampler=keys, num_workers=workers, collate_fn=_stack,
                                         prefetch_factor=2 if workers else None)
    yield from loader


def _stack(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(items) if items else torch.zeros(0)


class TrainingNet(nn.Module):
    """The embedding model, optionally fed by an image backbone (so DDP sees one module): from pixels (`recompute`:
    frozen; `finetune`: depth = all blocks, trained) or from cached lower activations (`partial`: the top `depth`
    blocks and the head, trained)."""

    def __init__(self, model: nn.Module, backbone: TunableBackbone | None = None, depth: int = 0,
                 trainable: bool = False, feature_dropout: float = 0.0):
        super().__init__()
        self.model = model
        self.backbone = backbone
        self.depth = depth
        self.trainable = trainable
        self.feature_dropout = feature_dropout
        if backbone is not None:
            trained = {id(p) for p in backbone.top_parameters(depth)} if trainable else set()
            for p in backbone.parameters():
                p.requires_grad_(id(p) in trained)

    def forward(self, frames, frame_mask, text, has_text, domain, pixels=None, acts=None):
        if self.backbone is not None and (pixels is not None or acts is not None):
            with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
                if acts is not None:  # activations of the present frames, row-major
                    feats = self.backbone.upper(acts, self.depth) if len(acts) else None
                else:
                    flat = pixels[frame_mask]  # (frames present, 3, H, W)
                    feats = self.backbone(flat, self.depth) if len(flat) else None
            if feats is None:
                feats = frames.new_zeros((0, frames.shape[-1]))
            feats = nn.functional.dropout(feats, self.feature_dropout, training=self.training)
            frames = frames.new_zeros(frames.shape).masked_scatter(frame_mask[..., None], feats.to(frames.dtype))
        return self.model(frames, frame_mask, text, has_text, domain)


def make_backbone(image_encoder, device: str) -> TunableBackbone:
    """A trainable copy of an already loaded image encoder's network: training must not change the weights the
    encoder (and its feature cache key) stands for."""
    return tunable_backbone(copy.deepcopy(image_encoder)).to(device)
