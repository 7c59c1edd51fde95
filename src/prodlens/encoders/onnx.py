"""ONNX Runtime as the runtime of an image encoder: its torch graph exported once (pixels → pooled features and class
logits), kept in the cache directory under the encoder's identity, then run by an ONNX Runtime session. On CPU the
exported EfficientNet runs several times faster than torch eager (bench/embed_throughput.py) with the same outputs
to ~1e-6, so the feature cache, saved models and indexes do not depend on the runtime.

An encoder is exportable when it has `onnx_module()` (a torch module: pixels → (features, logits or features)).
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..cache import default_cache_dir
from ..errors import ProdlensError
from .base import ImageFeatures

_EXPORT_LOCK = threading.Lock()


class OnnxImageEncoder:
    """The same encoder (name, dim, class names, `prepare`, `encode`) with its forward pass in ONNX Runtime."""

    def __init__(self, torch_encoder, identity: str, threads: int | None = None,
                 directory: str | Path | None = None):
        """`identity`: what the weights are (spec, weights digest, image size): names the exported file, so a
        changed backbone is exported anew. `threads`: ONNX Runtime's intra-op threads (default: torch's)."""
        import torch

        if not hasattr(torch_encoder, "onnx_module"):
            raise ProdlensError(f"{torch_encoder.name} cannot run in ONNX Runtime (no export); use runtime 'torch'")
        self.torch_encoder = torch_encoder
        self.name, self.dim = torch_encoder.name, torch_encoder.dim
        self.class_names = torch_encoder.class_names
        example = torch.from_numpy(torch_encoder.pixels([Image.new("RGB", (64, 64))] * 2))  # its own input shape
        self.path, self.session = exported_session(torch_encoder.onnx_module(), example, ["features", "logits"],
                                                   "image", identity, threads, directory)
        self.has_logits = len(self.session.get_outputs()) > 1 and self.class_names is not None

    def prepare(self, images: list[Image.Image]) -> list[Image.Image]:
        return self.torch_encoder.prepare(images)

    def pixels(self, images: list[Image.Image]) -> np.ndarray:
        return self.torch_encoder.pixels(images)

    def encode(self, images: list[Image.Image]) -> ImageFeatures:
        if not images:
            return ImageFeatures(np.zeros((0, self.dim), np.float32),
                                 np.zeros((0, len(self.class_names)), np.float32) if self.has_logits else None)
        outputs = self.session.run(None, {"pixels": self.pixels(images)})
        return ImageFeatures(outputs[0].astype(np.float32), outputs[1].astype(np.float32) if self.has_logits else None)


class OnnxModule:
    """A frozen torch module (one input, one output) run by ONNX Runtime: exported once under `identity`."""

    def __init__(self, module, example, identity: str, threads: int | None = None,
                 directory: str | Path | None = None):
        self.path, self.session = exported_session(module, example, ["output"], "module", identity, threads,
                                                   directory)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]


def exported_session(module, example, outputs: list[str], kind: str, identity: str, threads: int | None = None,
                     directory: str | Path | None = None):
    """(path, ONNX Runtime session) of `module` exported once under `identity` (a `kind` file in the cache
    directory), with `threads` intra-op threads (default: torch's)."""
    import onnxruntime as ort
    import torch

    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    path = Path(directory or default_cache_dir() / "onnx") / f"{kind}-{digest}.onnx"
    with _EXPORT_LOCK:
        if not path.is_file():
            _export(module, example, path, outputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return path, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export(module, example, path: Path, outputs: list[str]) -> None:
    """`module` as an ONNX file with a dynamic batch, written atomically."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    module = module.eval().float()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on constant folding and its own deprecation
            torch.onnx.export(module, (example,), str(tmp), input_names=["pixels"], output_names=outputs,
                              dynamic_axes={name: {0: "batch"} for name in ["pixels", *outputs]},
                              opset_version=18, dynamo=False)
        onnx.checker.check_model(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
