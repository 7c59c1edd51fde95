"""ROPE-format catalogues of any size, written row for row as `shared/specs/rope-format.md` shows them: product id
first in the pair files, `id, frame number | timestamp, image name` frame rows in shuffled order, bare image names,
`空` for empty text, commas inside ASR text, two spaces after the comma in the live ASR file, Chinese text.

The benchmark of the data path (`bench/catalog_scale.py`) and the loader's tests write their catalogues with it.
Only the images of the first `media_samples` samples are written (links to a few tiny shared JPEGs): importing
never opens media, and embedding measures throughput on a slice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHARES = {"page": 0.25, "video": 0.47, "live": 0.28}  # ROPE train: 3.0M pages, 5.8M videos, 3.5M live clips
SAMPLES_PER_PRODUCT = 64  # ROPE train: 12.3M samples / 187k products
WORDS = ["简约", "西装", "外套", "碧根果", "坚果", "洗发水", "加绒", "加厚", "衣服", "口红", "面霜", "牛奶", "咖啡"]
FILE_NAMES = {"page": ("product_pages_pair", "page_titles", "page_images"),
              "video": ("product_videos_pair", "video_asrs", "video_frames"),
              "live": ("product_lives_pair", "live_asrs", "live_clips")}


@dataclass
class RopeTruth:
    """What a written catalogue holds (kept only when asked: at 1M samples it would not be small)."""
    samples: int = 0
    products: int = 0
    by_domain: dict[str, int] = field(default_factory=dict)
    product_of: dict[str, str] = field(default_factory=dict)  # sample id (domain/id) → product id
    frames_of: dict[str, list[str]] = field(default_factory=dict)  # sample id → image names in time order
    text_of: dict[str, str] = field(default_factory=dict)  # sample id → title / ASR text ('' when 空)
    media_names: list[str] = field(default_factory=list)


def image_name(domain: str, sample: int, frame: int) -> str:
    """UUID-like bare names, as ROPE's are (`eae32f52-2a9a-11ee-a32e-507c6f3c3e56.jpg`)."""
    return f"{sample:08x}-{frame:04x}-11ee-{'a32e' if domain == 'page' else 'b8ce'}-{ord(domain[0]):012x}.jpg"


def write_rope_files(root: str | Path, n_samples: int, frames: int = 8, seed: int = 0, prefix: str = "training_",
                     media_dir: str | Path | None = None, media_samples: int = 0, keep_truth: bool = False,
                     jpeg_pool: list[bytes] | None = None) -> RopeTruth:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_products = max(1, n_samples // SAMPLES_PER_PRODUCT)
    truth = RopeTruth(products=n_products)
    product_ids = rng.choice(np.arange(10_000, 10_000 + 20 * n_products), n_products, replace=False)
    next_id = 1
    for domain, share in SHARES.items():
        n = int(round(n_samples * share)) if domain != "live" else n_samples - sum(truth.by_domain.values())
        truth.by_domain[domain] = n
        ids = np.arange(next_id, next_id + n) * 7 + 3  # ids are per file in ROPE; sparse integers here
        next_id += n
        owners = product_ids[rng.integers(0, n_products, n)]
        pair_name, text_name, media_name = FILE_NAMES[domain]
        _write_lines(root / f"{prefix}{pair_name}.txt",
                     (f"{owners[i]}, {ids[i]}" for i in rng.permutation(n)))
        texts = _texts(rng, n, domain)
        gap = ",  " if domain == "live" else ", "  # the live ASR file has two spaces after the comma
        _write_lines(root / f"{prefix}{text_name}.txt", (f"{ids[i]}{gap}{texts[i]}" for i in rng.permutation(n)))
        per = 1 if domain == "page" else frames
        rows = rng.permutation(n * per)
        if domain == "page":
            lines = (f"{ids[r]}, {image_name(domain, ids[r], 0)}" for r in rows)
        else:
            base = 1_668_122_889_829 if domain == "live" else 0
            step = 1000 if domain == "live" else 30
            lines = (f"{ids[r // per]}, {base + (r % per) * step}, {image_name(domain, ids[r // per], r % per)}"
                     for r in rows)
        _write_lines(root / f"{prefix}{media_name}.txt", lines)
        if keep_truth:
            for i in range(n):
                sid = f"{domain}/{ids[i]}"
                truth.product_of[sid] = str(owners[i])
                truth.frames_of[sid] = [image_name(domain, ids[i], f) for f in range(per)]
                truth.text_of[sid] = "" if texts[i] == "空" else texts[i]
        if media_samples:
            take = min(n, max(1, int(round(media_samples * share))))
            truth.media_names += [image_name(domain, ids[i], f) for i in range(take) for f in range(per)]
    truth.samples = sum(truth.by_domain.values())
    if media_samples:
        _link_media(Path(media_dir) if media_dir else root / "media", truth.media_names, jpeg_pool or _jpegs())
    return truth


def _texts(rng: np.random.Generator, n: int, domain: str) -> list[str]:
    out = []
    for i in range(n):
        if rng.random() < 0.1:
            out.append("空")
            continue
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), 6 if domain == "page" else 14)]
        if domain != "page":  # speech: commas inside the text, as ROPE's ASR has
            words.insert(3, f"才{int(rng.integers(1, 99))}元,")
        out.append("".join(words) if domain == "page" else " ".join(words).replace(" ,", ","))
    return out


def _write_lines(path: Path, lines) -> None:
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        chunk = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 65536:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")


def _jpegs(count: int = 16) -> list[bytes]:
    import io

    from PIL import Image

    rng = np.random.default_rng(1)
    out = []
    for i in range(count):
        img = Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def _link_media(media: Path, names: list[str], pool: list[bytes]) -> None:
    """A few real JPEGs, hard-linked under every needed name (each name a file, as downloads would be)."""
    media.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, data in enumerate(pool):
        src = media / f".pool-{i:02d}.jpg"
        src.write_bytes(data)
        sources.append(src)
    for i, name in enumerate(names):
        target = media / name
        if not target.exists():
            os.link(sources[i % len(sources)], target)
