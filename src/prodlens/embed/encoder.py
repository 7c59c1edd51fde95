"""The one interface of prodlens's product encoders, zero-shot (`ProductEmbedder`) and trained
(`prodlens.model.CheckpointEmbedder`) alike, in the style of sentence-transformers:

    encoder = prodlens.load_encoder()                       # or a run directory / checkpoint, or "hf:...+minilm"
    vectors = encoder.encode(images=[photo], domain="live")  # numpy (N, D), L2-normalised
    vectors = encoder.encode(texts=["oat milk 1 l"], domain="page")
    vectors = encoder.encode(videos=["clip.mp4"], texts=["its title"], domain="video")
    embeddings = encoder.embed_catalog(catalog)              # a whole catalogue (cached, bad records reported)

`images`, `texts` and `videos` are aligned lists, one entry per item (None where an item has none of that kind); an
image entry is a PIL image, a path, or a list of them (frames of one item).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import RecordError
from ..media import DEFAULT_FRAMES, load_image, sample_frames


class ProductEncoder:
    """Base class: subclasses give `embed_queries`, `embed_catalog`, `signature`, `with_cache`, `frames` and
    `features` (the FeatureExtractor their encoders live in)."""

    name: str = "encoder"
    frames: int = DEFAULT_FRAMES  # frames sampled from a video

    def embed_queries(self, frames: list[list[Image.Image]], texts: list[str], domain: str,
                      readings: list | None = None) -> np.ndarray:
        """`readings`: what OCR read in each query's frames (`read_query`), when they were read before being
        prepared; None reads the frames as given."""
        raise NotImplementedError

    def read_query(self, frames: list[Image.Image]):
        """What OCR reads in a query's frames (a `prodlens.ocr.Reading`), or None when the model reads nothing."""
        return self.features.read_query(frames)

    def prepare_query_frames(self, frames: list[Image.Image]) -> list[Image.Image]:
        """A query's frames made ready for `embed_queries` ahead of it, in the caller's thread (the image encoder's
        resize and crop, when it offers one; embedding them gives the same vector)."""
        return self.features.prepare_frames(frames)

    def embed_catalog(self, catalog, progress: bool = True):
        raise NotImplementedError

    def signature(self) -> dict:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """The encoder as a model directory (`prodlens.embed.saved`); `prodlens.load_encoder(path)` loads it."""
        raise NotImplementedError

    def with_cache(self, cache) -> "ProductEncoder":
        """The same encoder (models shared, not reloaded) writing to another feature cache."""
        raise NotImplementedError

    def embed_query(self, frames: list[Image.Image], text: str = "", domain: str = "live") -> np.ndarray:
        """Embed one ad-hoc query (an uploaded photo or clip frames, and/or text) like a sample of `domain`."""
        return self.embed_queries([frames], [text], domain)[0]

    def encode(self, images: Sequence | None = None, texts: Sequence[str | None] | None = None,
               videos: Sequence[str | Path | None] | None = None, domain: str = "page",
               batch_size: int = 32, titles: Sequence[str | None] | None = None) -> np.ndarray:
        """Embed N items given as aligned lists; an item needs at least one of image, text, video. `titles`: a
        page's name, as printed on the product: with a model that reads text in pictures it joins what is read
        there, as a catalogue page's title does (`texts` are embedded by the text encoder either way)."""
        given = [x for x in (images, texts, videos) if x is not None]
        if not given:
            raise ValueError("encode() needs images, texts or videos")
        n = len(given[0])
        if any(len(x) != n for x in given):
            raise ValueError("images, texts and videos must have one entry per item (use None for none)")
        out = []
        for start in range(0, n, batch_size):
            items = range(start, min(n, start + batch_size))
            frames = [self._frames_of(images[i] if images is not None else None,
                                      videos[i] if videos is not None else None, f"item {i}") for i in items]
            text = [(texts[i] or "") if texts is not None else "" for i in items]
            for i, f, t in zip(items, frames, text):
                if not f and not t.strip():
                    raise RecordError(f"item {i}", "nothing to embed: give an image, a video or some text")
            readings = None
            if titles is not None:
                readings = [self.read_query(f) if f else None for f in frames]
                readings = [r.titled(titles[i] or "") if r is not None else None for i, r in zip(items, readings)]
            out.append(self.embed_queries(frames, text, domain, readings))
        return np.concatenate(out).astype(np.float32)

    def _frames_of(self, image, video, record: str) -> list[Image.Image]:
        frames: list[Image.Image] = []
        for img in (image if isinstance(image, (list, tuple)) else [image] if image is not None else []):
            frames.append(img.convert("RGB") if isinstance(img, Image.Image) else load_image(Path(img), record))
        if video is not None:
            frames += sample_frames(Path(video), self.frames, record)
        return frames
