"""Training with the image backbone in the loop: `recompute` (frozen, features recomputed every step from
augmented pixels) and `finetune` (the backbone is trained too; meant for GPUs).

Pixels are never held for the catalogue: `FrameSource` decodes a sample's frames when a step asks for them, in
DataLoader worker processes that run ahead of the step (`train.loader_workers`), and each crop / flip is drawn from
a seed of (run seed, step, sample), so a resumed run sees the same pixels as an uninterrupted one.
Only the EfficientNet-Lite0 backbone is supported here; other image encoders train on cached features.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import torch
from torch import nn

from ..catalog import Sample
from ..embed.embedder import load_sample_frames
from ..encoders.image import EfficientNetLite0, resize_center_crop
from ..errors import ProdlensError, RecordError
from ..model.features import FeatureTable


class FrameSource(torch.utils.data.Dataset):
    """Frames of a FeatureTable's rows, decoded on demand from the media its `media` table names. An item is
    (row, seed, train) → float pixels (max_frames, 3, crop, crop) in [-1, 1], zero where a sample has fewer frames:
    a random crop of a crop × 8/7 resize and a random flip when training, the centre crop otherwise. A media table
    on disk is memory-mapped by each worker process when it first needs it (never copied into the workers)."""

    def __init__(self, table: FeatureTable, frames: int, max_frames: int, crop: int = 224):
        self.root = Path(table.root)
        self.media = table.media
        self.count = len(table)
        self.frames, self.max_frames, self.crop = frames, max_frames, crop
        self.size = int(round(crop * 8 / 7))
        self._mapped = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mapped"] = None  # each process maps the file itself
        return state

    def __len__(self) -> int:
        return self.count

    def _sample(self, row: int) -> Sample:
        media = self.media
        if isinstance(media, Path):
            if self._mapped is None:
                self._mapped = pa.ipc.open_file(pa.memory_map(str(media))).read_all()
            media = self._mapped
        record = media.slice(row, 1).to_pylist()[0]
        return Sample(record["sample_id"], "", "", images=tuple(record["images"] or ()), video=record["video"])

    def __getitem__(self, key: tuple[int, int, bool]) -> torch.Tensor:
        row, seed, train = key
        try:
            images = load_sample_frames(self.root, self._sample(row), self.frames)[: self.max_frames]
        except RecordError:
            images = []  # a sample with text only (or whose media broke since): no pixels
        rng = np.random.default_rng(seed)
        c, s = self.crop, self.size
        out = torch.zeros((self.max_frames, 3, c, c), dtype=torch.float32)
        y, x = (rng.integers(0, s - c + 1, 2) if train else ((s - c) // 2,) * 2)
        flip = train and rng.random() < 0.5
        for j, img in enumerate(images):
            arr = np.asarray(resize_center_crop(img, s), dtype=np.uint8)[y:y + c, x:x + c]
            if flip:
                arr = arr[:, ::-1]
            out[j] = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 127.5 - 1.0
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


class ImageBackbone(nn.Module):
    """EfficientNet-Lite0 trunk → pooled 1280-d features. BatchNorm statistics stay frozen (small batches)."""

    def __init__(self, encoder: EfficientNetLite0):
        super().__init__()
        self.net = encoder.model

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixels).mean(dim=(2, 3))


class TrainingNet(nn.Module):
    """The embedding model, optionally fed by a backbone from pixels (so DDP sees one module)."""

    def __init__(self, model: nn.Module, backbone: ImageBackbone | None = None, trainable_backbone: bool = False):
        super().__init__()
        self.model = model
        self.backbone = backbone
        self.trainable_backbone = trainable_backbone
        if backbone is not None and not trainable_backbone:
            for p in backbone.parameters():
                p.requires_grad_(False)

    def forward(self, frames, frame_mask, text, has_text, domain, pixels=None):
        if pixels is not None and self.backbone is not None:
            flat = pixels[frame_mask]  # (frames present, 3, H, W)
            with torch.set_grad_enabled(self.trainable_backbone and torch.is_grad_enabled()):
                feats = self.backbone(flat) if len(flat) else frames.new_zeros((0, frames.shape[-1]))
            frames = frames.new_zeros(frames.shape).masked_scatter(frame_mask[..., None], feats.to(frames.dtype))
        return self.model(frames, frame_mask, text, has_text, domain)


def make_backbone(image_encoder: str, device: str) -> ImageBackbone:
    if image_encoder != "efficientnet-lite0":
        raise ProdlensError(f"backbone training supports efficientnet-lite0 only (got {image_encoder!r}); "
                            "use train.backbone = 'cached' for other encoders")
    return ImageBackbone(EfficientNetLite0(device=device)).to(device)
