"""The ROPE dataset layout (COPE, ICCV 2023), as its public README describes it.

ROPE is distributed as text files of id pairs and media URLs, per split (`training_*` and `test_*`/`testing_*`):

    <split>_product_pages_pair.txt   page_id  <TAB> product_id
    <split>_product_videos_pair.txt  video_id <TAB> product_id
    <split>_product_lives_pair.txt   live_id  <TAB> product_id
    <split>_page_titles.txt          page_id  <TAB> title
    <split>_video_asrs.txt           video_id <TAB> ASR text
    <split>_live_asrs.txt            live_id  <TAB> ASR text
    <split>_page_images.txt          page_id  <TAB> image URL or path
    <split>_video_frames.txt         video_id <TAB> frame URL or path (one row per frame, or comma-separated)
    <split>_live_clips.txt           live_id  <TAB> frame URL or path (same)

A line without a tab is split at its first comma. URLs are mapped to downloaded files by their file name under
`media_dir` (the URL prefix is dropped, as the README explains); relative paths are taken from the root.
Text equal to '空' ("empty", ROPE's placeholder) counts as no text.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import BadRecords, ProdlensError
from .schema import Catalog, Product, Sample, posix
from .text import clean_text

SPLIT_PREFIXES = {"train": ("training_", "train_"), "test": ("test_", "testing_")}
EMPTY_MARKERS = {"", "空", "null", "none"}
DOMAIN_FILES = {
    # domain: (pair file, text file, media file)
    "page": ("product_pages_pair", "page_titles", "page_images"),
    "video": ("product_videos_pair", "video_asrs", "video_frames"),
    "live": ("product_lives_pair", "live_asrs", "live_clips"),
}


def load_rope(root: str | Path, splits: tuple[str, ...] | None = None, media_dir: str = "media") -> Catalog:
    root = Path(root)
    bad = BadRecords()
    products: dict[str, Product] = {}
    samples: list[Sample] = []
    found = False
    for split in splits or tuple(SPLIT_PREFIXES):
        prefix = _find_prefix(root, split)
        if prefix is None:
            if splits:
                raise ProdlensError(f"ROPE split {split!r}: no {SPLIT_PREFIXES[split][0]}*_pair.txt files under {root}")
            continue
        found = True
        for domain, (pair_name, text_name, media_name) in DOMAIN_FILES.items():
            pair_path = root / f"{prefix}{pair_name}.txt"
            if not pair_path.exists():
                continue
            pairs = _read_key_values(pair_path, bad)
            texts = _read_key_values(root / f"{prefix}{text_name}.txt", bad)
            media = _read_key_values(root / f"{prefix}{media_name}.txt", bad)
            for sample_key, product_values in pairs.items():
                product_id = product_values[0]
                sample_id = f"{domain}/{sample_key}"
                frames = [_local_path(u, media_dir) for v in media.get(sample_key, []) for u in v.split(",") if u.strip()]
                if not frames:
                    bad.add(sample_id, f"no image/frame listed in {prefix}{media_name}.txt", "rope")
                    continue
                text = " ".join(texts.get(sample_key, []))
                text = "" if text.strip().lower() in EMPTY_MARKERS else clean_text(text, sample_id)
                if product_id not in products:
                    products[product_id] = Product(product_id)
                if domain == "page":
                    if text and not products[product_id].title:
                        products[product_id] = Product(product_id, title=text)
                    samples.append(Sample(sample_id, product_id, domain, images=(frames[0],), title=text, split=split))
                else:
                    samples.append(Sample(sample_id, product_id, domain, images=tuple(frames),
                                          asr_text=text or None, split=split))
    if not found:
        raise ProdlensError(f"no ROPE files (training_*_pair.txt / test_*_pair.txt) under {root}")
    return Catalog.build(root, list(products.values()), samples, bad, name="rope")


def _find_prefix(root: Path, split: str) -> str | None:
    for prefix in SPLIT_PREFIXES[split]:
        if any((root / f"{prefix}{names[0]}.txt").exists() for names in DOMAIN_FILES.values()):
            return prefix
    return None


def _read_key_values(path: Path, bad: BadRecords) -> dict[str, list[str]]:
    """`key<TAB>value` lines (or `key,value`), values of repeated keys kept in file order."""
    out: dict[str, list[str]] = defaultdict(list)
    if not path.exists():
        return out
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            record = f"{path.name} line {line_no}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                bad.add(record, f"not valid UTF-8 (byte {e.start})", "rope")
                continue
            if not line.strip():
                continue
            sep = "\t" if "\t" in line else ","
            key, _, value = line.partition(sep)
            if not key.strip() or not _:
                bad.add(record, f"expected 'id<TAB>value', got {line[:80]!r}", "rope")
                continue
            out[key.strip()].append(value.strip())
    return out


def _local_path(url_or_path: str, media_dir: str) -> str:
    url_or_path = url_or_path.strip()
    if "://" in url_or_path:
        name = url_or_path.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        return posix(Path(media_dir) / name)
    return posix(url_or_path)
