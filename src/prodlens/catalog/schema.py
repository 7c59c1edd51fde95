"""The catalogue data model: products, and their samples in the three domains of ROPE.

A product is shown as *page* samples (product-page image(s) + title/description), *video* samples (a short video)
and *live* samples (a live-stream clip). A video or live sample is a video file or an ordered list of frame images,
with an optional title and optional ASR text. Media paths are stored relative to the catalogue root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from ..errors import BadRecords, RecordError

DOMAINS: tuple[str, ...] = ("page", "video", "live")
DOMAIN_LETTER = {"page": "P", "video": "V", "live": "L"}


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str = ""
    category: str = ""
    description: str = ""
    # any other columns of products.csv (brand, price, ...): filterable in an index, never embedded
    attributes: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Sample:
    sample_id: str
    product_id: str
    domain: str
    images: tuple[str, ...] = ()  # a page image, or the ordered frames of a video/live sample
    video: str | None = None  # a video file (video/live samples)
    title: str = ""
    text: str = ""  # page description, or any other free text attached to the sample
    asr_text: str | None = None  # speech transcript, when known
    split: str | None = None  # None: the sample belongs to every split (e.g. the product pages of a gallery)

    @property
    def media_paths(self) -> tuple[str, ...]:
        return ((self.video,) if self.video else ()) + self.images

    def check_shape(self) -> None:
        """Raise RecordError if the record itself (not its files) is malformed."""
        if not self.sample_id:
            raise RecordError("<sample without id>", "empty sample_id")
        if not self.product_id:
            raise RecordError(self.sample_id, "empty product_id")
        if self.domain not in DOMAINS:
            raise RecordError(self.sample_id, f"unknown domain {self.domain!r} (expected one of {', '.join(DOMAINS)})")
        if not self.images and not self.video:
            raise RecordError(self.sample_id, "no media: needs an image, a frame list or a video file")
        if self.video and self.images:
            raise RecordError(self.sample_id, "has both a video file and a frame list; give one")
        if self.domain == "page" and self.video:
            raise RecordError(self.sample_id, "a page sample takes images, not a video file")


def check_media_path(root: str, rel: str, record: str) -> None:
    """The checks a media path gets when a catalogue is built: lexical only (no filesystem call per path, which at
    catalogue scale costs more than everything else). Symlinks that leave the root are caught by
    `resolve_media_path` when the file is decoded. `root` is an absolute, normalised path."""
    if not rel:
        raise RecordError(record, "empty media path")
    if "\x00" in rel:
        raise RecordError(record, "media path contains a NUL byte")
    full = os.path.normpath(os.path.join(root, rel))
    if full != root and not full.startswith(root.rstrip(os.sep) + os.sep):
        raise RecordError(record, f"media path {rel!r} escapes the catalogue root {root}")


def resolve_media_path(root: Path, rel: str, record: str) -> Path:
    """The absolute path of a catalogue media path, refusing paths that escape the catalogue root."""
    if not rel:
        raise RecordError(record, "empty media path")
    if "\x00" in rel:
        raise RecordError(record, "media path contains a NUL byte")
    root = root.resolve()
    candidate = Path(rel)
    full = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if full != root and root not in full.parents:
        raise RecordError(record, f"media path {rel!r} escapes the catalogue root {root}")
    return full


@dataclass
class Catalog:
    """Products and samples under one root directory, plus the records that could not be loaded."""

    root: Path
    products: dict[str, Product]
    samples: list[Sample]
    bad: BadRecords = field(default_factory=BadRecords)
    name: str = "catalog"

    @classmethod
    def build(cls, root: str | Path, products: list[Product], samples: list[Sample],
              bad: BadRecords | None = None, name: str = "catalog") -> "Catalog":
        """Check ids and record shapes; malformed or duplicate records go to `bad` instead of the catalogue."""
        bad = bad if bad is not None else BadRecords()
        by_id: dict[str, Product] = {}
        for p in products:
            if not p.product_id:
                bad.add("<product without id>", "empty product_id", "catalog")
            elif p.product_id in by_id:
                bad.add(f"product {p.product_id}", "duplicate product_id", "catalog")
            else:
                by_id[p.product_id] = p
        kept: list[Sample] = []
        seen: set[str] = set()
        root_abs = os.path.normpath(str(Path(root).absolute()))
        for s in samples:
            try:
                s.check_shape()
                if s.sample_id in seen:
                    raise RecordError(s.sample_id, "duplicate sample_id")
                if s.product_id not in by_id:
                    raise RecordError(s.sample_id, f"refers to unknown product {s.product_id!r}")
                for rel in s.media_paths:
                    check_media_path(root_abs, rel, s.sample_id)
            except RecordError as e:
                bad.add_error(e, "catalog")
                continue
            seen.add(s.sample_id)
            kept.append(s)
        return cls(Path(root), by_id, kept, bad, name)

    # -- views -------------------------------------------------------------------------------------------------
    @property
    def domains(self) -> list[str]:
        present = {s.domain for s in self.samples}
        return [d for d in DOMAINS if d in present]

    @property
    def splits(self) -> list[str]:
        return sorted({s.split for s in self.samples if s.split})

    def select(self, split: str | None = None, domains: list[str] | None = None) -> "Catalog":
        """Samples of one split (plus split-less samples shared by all splits), optionally of some domains only."""
        keep = [s for s in self.samples
                if (split is None or s.split in (None, split)) and (domains is None or s.domain in domains)]
        return replace(self, samples=keep)

    def by_domain(self, domain: str) -> list[Sample]:
        return [s for s in self.samples if s.domain == domain]

    def path(self, rel: str, record: str = "") -> Path:
        return resolve_media_path(self.root, rel, record or rel)

    def sample_text(self, s: Sample, use_asr: bool = True, speech: str | None = None) -> str:
        """The text a sample carries: title, description/free text and its speech — the raw ASR transcript, or
        `speech` when given (e.g. a summary of it); `use_asr=False` leaves speech out."""
        parts = [s.title, s.text]
        if use_asr:
            parts.append(speech if speech is not None else (s.asr_text or ""))
        return ". ".join(p.strip() for p in parts if p and p.strip())

    def summary(self) -> dict:
        counts = {d: len(self.by_domain(d)) for d in DOMAINS}
        return {"products": len(self.products), "samples": len(self.samples), **counts, "bad": len(self.bad)}


def posix(rel: str | Path) -> str:
    return str(PurePosixPath(*Path(rel).parts))
