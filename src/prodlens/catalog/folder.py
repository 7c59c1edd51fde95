"""A plain folder layout for users' own catalogues.

    ROOT/
      products.csv                       optional: product_id,title,category,description, and any other columns
                                         (brand, price, ...) as the product's attributes (filterable in an index)
      splits.csv                         optional: sample_id,split
      page/<product_id>/<name>.jpg       a product-page image; <name>.txt beside it = title/description
      video/<product_id>/<name>.mp4      a short video, or video/<product_id>/<name>/ = a folder of frames
      live/<product_id>/<name>.mp4       a live-stream clip (or a folder of frames)
      .../<name>.asr.txt                 optional ASR transcript of a video/live sample

Sample ids are `<domain>/<product_id>/<name>`. Products that only appear as folder names get their id as title.
products.csv and splits.csv are CSV (or TSV: a tab in the header); a product id given twice keeps its first row, and
every row skipped is reported by its line.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import BadRecords, ProdlensError, RecordError
from ..rows import read_rows
from .schema import DOMAINS, Catalog, Product, Sample, posix
from .text import clean_text, read_text_file

PRODUCT_COLUMNS = {"product_id", "title", "category", "description"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".flv", ".ts"}


def load_folder(root: str | Path) -> Catalog:
    root = Path(root)
    if not any((root / d).is_dir() for d in DOMAINS):
        raise ProdlensError(f"{root} has none of the folders {', '.join(DOMAINS)}/ (see the folder layout in README)")
    bad = BadRecords()
    listed = (root / "products.csv").is_file()
    products = _read_products(root / "products.csv", bad)
    splits = _read_splits(root / "splits.csv", bad)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name not in DOMAINS:
            bad.add(f"{folder.name}/", "not a domain folder (page/, video/, live/): its files are not loaded", "load")
    samples: list[Sample] = []
    for domain in DOMAINS:
        domain_dir = root / domain
        if not domain_dir.is_dir():
            continue
        for product_dir in sorted(p for p in domain_dir.iterdir() if p.is_dir()):
            pid = product_dir.name
            if listed and pid not in products:
                bad.add(f"{domain}/{pid}", "product not in products.csv: loaded with its folder name as title and "
                                           "no category", "load")
            products.setdefault(pid, Product(pid, title=pid.replace("_", " ").replace("-", " ")))
            for entry in sorted(product_dir.iterdir()):
                sample = _sample_from_entry(root, domain, pid, entry, bad)
                if sample is not None:
                    samples.append(sample)
    samples = [replace(s, split=splits[s.sample_id]) if s.sample_id in splits else s for s in samples]
    return Catalog.build(root, list(products.values()), samples, bad, name=root.name)


def _sample_from_entry(root: Path, domain: str, pid: str, entry: Path, bad: BadRecords) -> Sample | None:
    suffix = entry.suffix.lower()
    if entry.is_file() and (suffix == ".txt" or entry.name.startswith(".")):
        return None  # sidecar text, hidden files
    name = entry.stem if entry.is_file() else entry.name
    sample_id = f"{domain}/{pid}/{name}"
    rel = posix(entry.relative_to(root))
    try:
        if entry.is_dir():
            frames = sorted(posix(p.relative_to(root)) for p in entry.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not frames:
                raise RecordError(sample_id, f"frame folder {rel} holds no images")
            kwargs = {"images": tuple(frames)}
        elif suffix in IMAGE_EXTS:
            kwargs = {"images": (rel,)}
        elif suffix in VIDEO_EXTS:
            kwargs = {"video": rel}
        else:
            raise RecordError(sample_id, f"unsupported file type {suffix or '(none)'} for {rel}")
        text_file = entry.parent / f"{name}.txt"
        asr_file = entry.parent / f"{name}.asr.txt"
        text = read_text_file(text_file, sample_id) if text_file.exists() else ""
        asr = read_text_file(asr_file, sample_id) if asr_file.exists() else None
    except RecordError as e:
        bad.add_error(e, "folder")
        return None
    if domain == "page":
        title, _, rest = text.partition(". ")
        return Sample(sample_id, pid, domain, title=title, text=rest, **kwargs)
    return Sample(sample_id, pid, domain, title=text, asr_text=asr or None, **kwargs)


def _read_products(path: Path, bad: BadRecords) -> dict[str, Product]:
    products: dict[str, Product] = {}
    lines: dict[str, int] = {}
    if not path.exists():
        return products
    for line_no, row in _csv_rows(path, bad):
        record = f"{path.name} line {line_no}"
        pid = (row.get("product_id") or "").strip()
        if not pid:
            bad.add(record, "missing product_id", "folder")
            continue
        if pid in products:  # the first row of a product id is kept
            bad.add(record, f"duplicate product_id {pid!r} (first given at line {lines[pid]}): skipped", "folder")
            continue
        try:
            fields = {k: clean_text(row.get(k) or "", record) for k in ("title", "category", "description")}
            attributes = {k.strip(): clean_text(v, record) for k, v in row.items()
                          if k and k.strip() and k.strip() not in PRODUCT_COLUMNS and isinstance(v, str) and v.strip()}
        except RecordError as e:
            bad.add_error(e, "folder")
            continue
        products[pid] = Product(pid, **fields, attributes=attributes)
        lines[pid] = line_no
    return products


def _read_splits(path: Path, bad: BadRecords) -> dict[str, str]:
    splits: dict[str, str] = {}
    if not path.exists():
        return splits
    for line_no, row in _csv_rows(path, bad):
        sid, split = (row.get("sample_id") or "").strip(), (row.get("split") or "").strip()
        if not sid or not split:
            bad.add(f"{path.name} line {line_no}", "needs sample_id and split", "folder")
            continue
        if sid in splits and splits[sid] != split:
            bad.add(f"{path.name} line {line_no}", f"sample {sid!r} given split {split!r} after {splits[sid]!r}: "
                    "the first is kept", "folder")
            continue
        splits[sid] = split
    return splits


def _csv_rows(path: Path, bad: BadRecords):
    """(line, row) of every good row; a bad one (field count, UTF-8, a runaway field) is reported by its line."""
    return read_rows(path, bad, "folder")
