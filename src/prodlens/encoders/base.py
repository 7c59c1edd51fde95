"""What an encoder is: images or texts in, float32 vectors out. Encoders are chosen by a spec string."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image


@dataclass
class ImageFeatures:
    features: np.ndarray  # (N, D) float32 pooled backbone features, not normalised
    logits: np.ndarray | None = None  # (N, C) class logits when the backbone has a labelled head


class ImageEncoder(Protocol):
    name: str  # identifies weights + preprocessing; part of every cache key
    dim: int
    class_names: list[str] | None  # labels of the classification head, if any (used for zero-shot text bridging)

    def encode(self, images: list[Image.Image]) -> ImageFeatures: ...

    # Optional: `prepare(images) -> images`, the encoder's own per-image preprocessing, idempotent, that callers may
    # run ahead in other threads (the search service does, in its request threads).


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised."""
        ...


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)
