"""A trained model's image tower and head as one ONNX graph, for serving without Python's torch (ONNX Runtime,
TensorRT, a browser): pixels of one photo per item (+ an optional text vector) → the product embedding.

    inputs:  pixels   float32 (B, 3, S, S)  the image resized (short side S, centre crop) and scaled to [-1, 1]
             text     float32 (B, T)        the item's text embedded by the model's text encoder (zeros if none)
             has_text bool    (B,)          whether `text` is given
             domain   int64   (B,)          0 page, 1 video, 2 live (prodlens.model.network.DOMAIN_INDEX)
             read     float32 (B, R)        only for a model that reads text in pictures: the read text's trigram
                                            vector (prodlens.encoders.CharNgramEncoder; zeros if nothing was read)
    output:  embedding float32 (B, E [+ R]) L2-normalised

The preprocessing and settings are written into the graph's metadata (`prodlens.*` keys). Flip test-time
augmentation, when the model uses it, is inside the graph.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from ..embed import model_id
from ..errors import ProdlensError
from .network import DOMAIN_INDEX


class ImageTower(nn.Module):
    """Backbone features of one image per item (mirror-averaged with flip TTA) → the trained network."""

    def __init__(self, encoder):
        super().__init__()
        image_encoder = encoder.features.torch_image_encoder
        if not hasattr(image_encoder.model, "extract_features") and not hasattr(image_encoder, "features_from_pixels"):
            raise ProdlensError(f"exporting {image_encoder.name} is not supported")
        self.image_encoder = image_encoder
        self.backbone = image_encoder.model
        self.network = encoder.model
        self.flip = encoder.feature_config.flip_tta
        self.ocr_weight = encoder.ocr_weight

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        if hasattr(self.image_encoder, "features_from_pixels"):
            return self.image_encoder.features_from_pixels(pixels)
        return self.backbone.extract_features(pixels).mean(dim=(2, 3))

    def forward(self, pixels, text, has_text, domain, read=None):
        features = self._features(pixels)
        if self.flip:
            features = (features + self._features(torch.flip(pixels, dims=[3]))) / 2
        frames = features.unsqueeze(1)
        mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        embedding = self.network(frames, mask, text, has_text, domain)["embedding"]
        if self.ocr_weight is None:
            return embedding
        joined = torch.cat([math.sqrt(1 - self.ocr_weight) * embedding, math.sqrt(self.ocr_weight) * read], dim=1)
        return torch.nn.functional.normalize(joined, dim=-1)


def export_onnx(encoder, path: str | Path, batch: int = 2) -> Path:
    """Write `encoder` (a trained `CheckpointEmbedder`) as an ONNX file with a dynamic batch size."""
    import onnx

    from .checkpoint import CheckpointEmbedder

    if not isinstance(encoder, CheckpointEmbedder):
        raise ProdlensError(f"{encoder.name} is a zero-shot model: only trained models are exported")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tower = ImageTower(encoder).eval().float()
    size = encoder.feature_config.image_size
    example = (torch.zeros(batch, 3, size, size), torch.zeros(batch, encoder.run_config.model.text_feature_dim),
               torch.zeros(batch, dtype=torch.bool), torch.full((batch,), DOMAIN_INDEX["live"], dtype=torch.long))
    names = ["pixels", "text", "has_text", "domain"]
    if tower.ocr_weight is not None:
        example += (torch.zeros(batch, encoder.features.read_encoder.dim),)
        names.append("read")
    tmp = path.with_name(f".{path.name}.tmp")
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused inference kernel of attention layers has no ONNX op
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on constant folding and its own deprecation
            torch.onnx.export(tower, example, str(tmp), input_names=names, output_names=["embedding"],
                              dynamic_axes={n: {0: "batch"} for n in names + ["embedding"]}, opset_version=18,
                              dynamo=False)
        graph = onnx.load(str(tmp))
        meta = {"prodlens.model": encoder.name, "prodlens.model_id": model_id(encoder.signature()),
                "prodlens.image_size": str(size), "prodlens.pixels": "RGB, short side resized to image_size, "
                "centre crop, scaled to [-1, 1] (x / 127.5 - 1), NCHW", "prodlens.flip_tta": str(tower.flip),
                "prodlens.domains": json.dumps(DOMAIN_INDEX),
                "prodlens.text_encoder": encoder.feature_config.text_encoder,
                "prodlens.read": "none" if tower.ocr_weight is None else
                f"{encoder.features.read_encoder.name} of the text read by {encoder.feature_config.ocr_model} "
                f"(pages: title first), weight {tower.ocr_weight:g}"}
        for key, value in meta.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(tmp))
        tmp.replace(path)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        tmp.unlink(missing_ok=True)
    return path
