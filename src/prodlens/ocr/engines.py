"""OCR engines, chosen by name; each reads one RGB image into (text, confidence, box) lines.

- `pp-ocrv6-small` (default): rapidocr 3 (Apache-2.0) running the PP-OCRv6 small detector and recogniser that ship
  inside its wheel, on ONNX Runtime; English and Chinese.
- `pp-ocrv6-tiny`: faster-paddle (MIT; Rust + its own ONNX Runtime, PP-OCRv6 tiny inside the wheel): about 3x
  faster, lower recall. `pp-ocrv6-small-fp` runs faster-paddle's small model.
No engine downloads anything at run time.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import ProdlensError

Line = tuple[str, float, list[list[float]]]  # text, confidence, four (x, y) corners
MIN_SIDE = 32  # the detectors' stride: smaller images are padded up to it


class RapidOcr:
    def __init__(self, threads: int = 1):
        try:
            from rapidocr import RapidOCR
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ProdlensError("OCR model pp-ocrv6-small needs the package rapidocr (with onnxruntime)") from e
        self._engine = RapidOCR(params={"Global.log_level": "error",  # its own logger: errors only
                                        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                        "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read(self, image: Image.Image) -> list[Line]:
        result = self._engine(np.ascontiguousarray(np.asarray(_padded(image))[:, :, ::-1]))  # it expects BGR
        if result.txts is None:
            return []
        return [(t, float(s), np.asarray(b, dtype=float).tolist()) for t, s, b in
                zip(result.txts, result.scores, result.boxes)]


class FasterPaddle:
    def __init__(self, size: str = "tiny", threads: int = 1):
        try:
            from faster_paddle import OcrEngine
        except ImportError as e:
            raise ProdlensError(f"OCR model pp-ocrv6-{size} (faster-paddle) needs the package faster-paddle") from e
        self._engine = OcrEngine(model_size=size, threads=threads)

    def read(self, image: Image.Image) -> list[Line]:
        buffer = io.BytesIO()
        _padded(image).save(buffer, format="PNG")
        result = self._engine.ocr(buffer.getvalue())
        lines = []
        for b in result.get("bounds", {}).values():
            (x0, y0), (x1, y1) = b["topLeftCoord"], b["bottomRightCoord"]
            lines.append((b["text"], float(b["confidence"]), [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        return lines


OCR_ENGINES: dict[str, Callable[..., object]] = {
    "pp-ocrv6-small": lambda threads=1: RapidOcr(threads),
    "pp-ocrv6-tiny": lambda threads=1: FasterPaddle("tiny", threads),
    "pp-ocrv6-small-fp": lambda threads=1: FasterPaddle("small", threads),
}
# the wheel each model's files ship in: its version is the model's identity (prodlens.ocr.read.OcrReader.key)
OCR_PACKAGES = {"pp-ocrv6-small": "rapidocr", "pp-ocrv6-tiny": "faster-paddle", "pp-ocrv6-small-fp": "faster-paddle"}


def ocr_model_names() -> list[str]:
    return sorted(OCR_ENGINES)


def build_ocr_engine(name: str, threads: int = 1):
    if name not in OCR_ENGINES:
        raise ProdlensError(f"unknown OCR model {name!r}; choose one of {', '.join(ocr_model_names())}")
    return OCR_ENGINES[name](threads=threads)


def _padded(image: Image.Image) -> Image.Image:
    """The RGB image, padded with white to at least MIN_SIDE on each side (a 4×4 thumbnail is read as nothing,
    not a crash inside the detector)."""
    image = image.convert("RGB")
    w, h = image.size
    if w >= MIN_SIDE and h >= MIN_SIDE:
        return image
    canvas = Image.new("RGB", (max(w, MIN_SIDE), max(h, MIN_SIDE)), "white")
    canvas.paste(image, (0, 0))
    return canvas
