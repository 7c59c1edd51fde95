"""Training with the image backbone in the loop: `recompute` (frozen, features recomputed every step from
augmented pixels) and `finetune` (the backbone is trained too; meant for GPUs).

Decoded frames are kept in memory as uint8 (`FrameStore`), so each step only crops, flips and runs the backbone.
Only the EfficientNet-Lite0 backbone is supported here; other image encoders train on cached features.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..catalog import Catalog
from ..embed import ProductEmbedder
from ..encoders.image import EfficientNetLite0, resize_center_crop
from ..errors import ProdlensError, RecordError
from ..progress import progress_bar


class FrameStore:
    """uint8 frames (N, F, 3, S, S) of the FeatureTable's samples, in the same row order; S = crop size × 8/7."""

    def __init__(self, catalog: Catalog, sample_ids: list[str], embedder: ProductEmbedder, max_frames: int,
                 crop: int = 224, progress: bool = True):
        self.size = int(round(crop * 8 / 7))
        self.crop = crop
        by_id = {s.sample_id: s for s in catalog.samples}
        self.pixels = torch.zeros((len(sample_ids), max_frames, 3, self.size, self.size), dtype=torch.uint8)
        with progress_bar(len(sample_ids), "decoding frames for the backbone", enabled=progress) as advance:
            for i, sid in enumerate(sample_ids):
                try:
                    frames = embedder.load_frames(catalog, by_id[sid])[:max_frames]
                except RecordError:
                    frames = []  # a sample with text only (or whose media broke since): no pixels
                for j, img in enumerate(frames):
                    arr = np.array(resize_center_crop(img, self.size), dtype=np.uint8)  # writable copy
                    self.pixels[i, j] = torch.from_numpy(arr).permute(2, 0, 1)
                advance(1)

    def batch(self, rows: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Float pixels (n, F, 3, crop, crop) in [-1, 1]: random crop + flip when training, centre crop otherwise."""
        px = self.pixels[rows]
        n, f = px.shape[:2]
        c, s = self.crop, self.size
        if train:
            ys = torch.randint(0, s - c + 1, (n,), generator=generator)
            xs = torch.randint(0, s - c + 1, (n,), generator=generator)
            flips = torch.rand(n, generator=generator) < 0.5
            out = torch.stack([px[i, :, :, ys[i]:ys[i] + c, xs[i]:xs[i] + c] for i in range(n)]) if n else \
                px[:, :, :, :c, :c]
            out = torch.where(flips[:, None, None, None, None], out.flip(-1), out)
        else:
            o = (s - c) // 2
            out = px[:, :, :, o:o + c, o:o + c]
        return out.float() / 127.5 - 1.0


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
