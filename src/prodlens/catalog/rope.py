"""The ROPE distribution format (COPE, ICCV 2023), as `shared/specs/rope-format.md` gives it from COPE's README.

Nine comma-separated text files per split (`training_*` for train; `test_*` or `testing_*` for test), a space after
every comma (two in the live ASR file):

    <p>product_pages_pair.txt    product id, page id
    <p>product_videos_pair.txt   product id, video id
    <p>product_lives_pair.txt    product id, live-clip id
    <p>page_titles.txt           page id, title              (the text itself may contain commas)
    <p>video_asrs.txt            video id, ASR text          (same)
    <p>live_asrs.txt             live-clip id, ASR text      (same)
    <p>page_images.txt           page id, image name
    <p>video_frames.txt          video id, frame number, image name     (rows in any order)
    <p>live_clips.txt            live-clip id, timestamp ms, image name (rows in any order)

Image names are bare file names under a media folder the user names; a URL is mapped to its file name. `空` is
empty text. Ids are integers, per file: a sample id carries its domain (`video/3179594`); samples and products of
other splits than train carry the split too (`video/test-3179594`, product `test-26140`), as ids restart per split.

The import never holds a whole file: every file is read in Arrow blocks and its rows are spilled into buckets by
sample id (hash partitioning, one Arrow stream file per bucket on disk); each bucket is then assembled alone — frames ordered by
number or timestamp, text and product attached, bad rows reported — and appended to `samples.parquet`. Memory is
bounded by the bucket, not the dataset.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

from .. import atomic
from ..errors import BadRecordLog, ProdlensError
from ..progress import progress_bar
from .manifest import MANIFEST_VERSION, PRODUCT_SCHEMA, ROW_GROUP_ROWS, SAMPLE_SCHEMA, load_manifest
from .text import MAX_TEXT_CHARS

SPLIT_PREFIXES = {"train": ("training_", "train_"), "test": ("test_", "testing_")}
DOMAIN_FILES = {  # domain: (pair file, text file, media file)
    "page": ("product_pages_pair", "page_titles", "page_images"),
    "video": ("product_videos_pair", "video_asrs", "video_frames"),
    "live": ("product_lives_pair", "live_asrs", "live_clips"),
}
EMPTY_TEXT = "空"
BUCKET_BYTES = 16 << 20  # input bytes per bucket: what one bucket holds in memory, whatever the dataset size
READ_BLOCK = 8 << 20


@dataclass
class ImportReport:
    manifest: Path
    samples: int
    products: int
    bad: int
    by_domain: dict[str, int]


def split_files(root: Path, split: str) -> dict[str, Path] | None:
    """The split's files by name (`product_pages_pair`, ...), or None when the split is not under `root`."""
    for prefix in SPLIT_PREFIXES[split]:
        files = {name: root / f"{prefix}{name}.txt" for names in DOMAIN_FILES.values() for name in names}
        if any(files[names[0]].exists() for names in DOMAIN_FILES.values()):
            return files
    return None


def import_rope(root: str | Path, out_dir: str | Path, media_dir: str | Path | None = None,
                splits: tuple[str, ...] | None = None, progress: bool = True) -> ImportReport:
    """ROPE text files under `root` → a manifest directory (`samples.parquet`, `products.parquet`, `catalog.json`,
    `bad_records.jsonl`). `media_dir`: where the downloaded images are (default `root/media`)."""
    root, out_dir = Path(root), Path(out_dir)
    media = Path(media_dir) if media_dir else root / "media"
    found = {s: split_files(root, s) for s in (splits or tuple(SPLIT_PREFIXES))}
    missing = [s for s, f in found.items() if f is None]
    if splits and missing:
        raise ProdlensError(f"ROPE split {missing[0]!r}: no {SPLIT_PREFIXES[missing[0]][0]}*_pair.txt files "
                            f"under {root}")
    found = {s: f for s, f in found.items() if f is not None}
    if not found:
        raise ProdlensError(f"no ROPE files (training_*_pair.txt / test_*_pair.txt) under {root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    bad = BadRecordLog(out_dir / "bad_records.jsonl")
    titles: dict[str, tuple[int, str]] = {}  # product → (page id, title) of its first titled page
    products: set[str] = set()
    counts = {d: 0 for d in DOMAIN_FILES}
    with tempfile.TemporaryDirectory(prefix="rope-import-", dir=out_dir) as tmp, \
            atomic.atomic_path(out_dir / "samples.parquet") as samples_tmp, \
            pq.ParquetWriter(samples_tmp, SAMPLE_SCHEMA) as writer:
        for split, files in found.items():
            tag = "" if split == "train" else f"{split}-"
            for domain, names in DOMAIN_FILES.items():
                if not files[names[0]].exists():
                    continue
                spill = Path(tmp) / split / domain
                n_buckets = _bucket_count([files[n] for n in names])
                _spill(files, names, domain, spill, n_buckets, bad, progress)
                label = f"assembling {split} {domain} ({n_buckets} bucket{'s' * (n_buckets > 1)})"
                with progress_bar(n_buckets, label, enabled=progress) as advance:
                    for bucket in range(n_buckets):
                        table = _assemble(spill, bucket, files, names, domain, split, tag, bad, titles, products)
                        if table.num_rows:
                            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                            counts[domain] += table.num_rows
                        advance(1)
                shutil.rmtree(spill)
    product_table = pa.table({"product_id": sorted(products), "title": [titles.get(p, (0, ""))[1] for p in sorted(products)],
                              "category": [""] * len(products), "description": [""] * len(products)},
                             schema=PRODUCT_SCHEMA)
    with atomic.atomic_path(out_dir / "products.parquet") as tmp_path:
        pq.write_table(product_table, tmp_path)
    bad.close()
    atomic.write_json(out_dir / "catalog.json", {
        "version": MANIFEST_VERSION, "name": "rope", "root": _relative_or_absolute(media, out_dir),
        "source": {"format": "rope", "root": str(root.resolve()), "splits": sorted(found)},
        "counts": {"samples": sum(counts.values()), "products": len(products), **counts, "bad": bad.count},
        "bad_records_at_import": bad.head()})
    return ImportReport(out_dir, sum(counts.values()), len(products), bad.count, counts)


def load_rope(root: str | Path, splits: tuple[str, ...] | None = None, media_dir: str | Path | None = None):
    """A ROPE catalogue in memory (for test-split-sized data; import big ones with `import_rope` and stream)."""
    with tempfile.TemporaryDirectory(prefix="rope-") as tmp:
        import_rope(root, tmp, media_dir, splits, progress=False)
        catalog = load_manifest(tmp)
    return catalog


# -- reading --------------------------------------------------------------------------------------------------------
def read_fields(path: Path, n_fields: int, bad: BadRecordLog) -> Iterator[tuple[list[pa.Array], pa.Array]]:
    """Stream a ROPE file as blocks of (fields, line numbers). Each line is split at its first n_fields - 1 commas
    (so text fields keep their own commas); the space(s) after a comma are dropped. Bad lines are reported.
    Lines are read in blocks of about READ_BLOCK bytes, so memory holds one block whatever the file's size."""
    first_line = 1
    with open(path, "rb") as f:
        while True:
            block = f.readlines(READ_BLOCK)
            if not block:
                break
            raw = pa.array(block, pa.binary())
            lines = pa.array(np.arange(first_line, first_line + len(block), dtype=np.int64))
            if first_line == 1 and block[0].startswith(b"\xef\xbb\xbf"):  # a byte-order mark
                raw = pa.array([block[0][3:]] + block[1:], pa.binary())
            first_line += len(block)
            del block
            text, lines = _decode_utf8(raw, lines, path, bad)
            text = pc.utf8_rtrim_whitespace(text)
            nonempty = pc.greater(pc.utf8_length(text), 0)
            text, lines = pc.filter(text, nonempty), pc.filter(lines, nonempty)
            parts = pc.split_pattern_regex(text, r",\s*", max_splits=n_fields - 1)
            ok = pc.equal(pc.list_value_length(parts), n_fields)
            _report(pc.invert(ok), text, lines, path, f"expected {n_fields} comma-separated fields", bad)
            parts, lines = pc.filter(parts, ok), pc.filter(lines, ok)
            yield [pc.utf8_trim_whitespace(pc.list_element(parts, i)) for i in range(n_fields)], lines


def _decode_utf8(raw: pa.Array, lines: pa.Array, path: Path, bad: BadRecordLog) -> tuple[pa.Array, pa.Array]:
    try:
        return raw.cast(pa.string()), lines
    except pa.ArrowInvalid:  # rare: find the rows that are not UTF-8 (a slow path for this block only)
        keep = []
        for i, value in enumerate(raw.to_pylist()):
            try:
                value.decode("utf-8")
                keep.append(True)
            except UnicodeDecodeError as e:
                bad.add(f"{path.name} line {lines[i].as_py()}", f"not valid UTF-8 (byte {e.start})", "rope")
                keep.append(False)
        mask = pa.array(keep)
        return pc.filter(raw, mask).cast(pa.string()), pc.filter(lines, mask)


def _report(mask: pa.Array, text: pa.Array, lines: pa.Array, path: Path, problem: str, bad: BadRecordLog) -> None:
    if pc.any(mask).as_py():
        for value, line in zip(pc.filter(text, mask).to_pylist(), pc.filter(lines, mask).to_pylist()):
            bad.add(f"{path.name} line {line}", f"{problem}: {str(value)[:80]!r}", "rope")


def _integers(values: pa.Array, lines: pa.Array, path: Path, what: str, bad: BadRecordLog) -> pa.Array:
    """A mask of rows whose `values` are integers written as text; the others are reported."""
    ok = pc.match_substring_regex(values, r"^[0-9]{1,18}$")
    _report(pc.invert(ok), values, lines, path, f"{what} is not an integer", bad)
    return ok


def image_file_name(values: pa.Array) -> pa.Array:
    """A URL → its file name (the media folder holds downloads by name); a bare name or relative path stays."""
    name = pc.struct_field(pc.extract_regex(values, r"^(?:.*/)?(?P<n>[^/?#]*)(?:[?#].*)?$"), "n")
    return pc.if_else(pc.match_substring(values, "://"), name, values)


# -- spilling into buckets --------------------------------------------------------------------------------------------
def _bucket_count(paths: list[Path]) -> int:
    size = sum(p.stat().st_size for p in paths if p.exists())
    return max(1, math.ceil(size / BUCKET_BYTES))


def _spill(files: dict[str, Path], names: tuple[str, str, str], domain: str, out: Path, n_buckets: int,
           bad: BadRecordLog, progress: bool) -> None:
    """Every row to the Arrow stream file of its bucket (`out/<kind>/<bucket>.arrow`). Writes are synchronous, block
    by block: nothing queues up in memory, however large the file."""
    total = sum(files[n].stat().st_size for n in names if files[n].exists())
    with progress_bar(total, f"reading {domain} files", enabled=progress, unit="B") as advance:
        for name, kind in zip(names, ("pairs", "texts", "media")):
            path = files[name]
            if not path.exists():
                continue
            (out / kind).mkdir(parents=True, exist_ok=True)
            writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
            try:
                for batch in _rows(path, kind, domain, n_buckets, bad):
                    bucket = batch.column("bucket").to_numpy()
                    order = np.argsort(bucket, kind="stable")
                    batch = batch.take(pa.array(order))
                    bucket = bucket[order]
                    cuts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1], True])
                    for lo, hi in zip(cuts[:-1], cuts[1:]):
                        b = int(bucket[lo])
                        if b not in writers:
                            writers[b] = pa.ipc.new_stream(str(out / kind / f"{b}.arrow"), batch.schema)
                        writers[b].write_batch(batch.slice(lo, hi - lo))
            finally:
                for writer in writers.values():
                    writer.close()
            advance(path.stat().st_size)


SPILL_SCHEMAS = {
    "pairs": pa.schema([("product", pa.string()), ("id", pa.int64()), ("line", pa.int64()), ("bucket", pa.int32())]),
    "texts": pa.schema([("id", pa.int64()), ("text", pa.string()), ("line", pa.int64()), ("bucket", pa.int32())]),
    "media": pa.schema([("id", pa.int64()), ("order", pa.int64()), ("name", pa.string()), ("line", pa.int64()),
                        ("bucket", pa.int32())]),  # pages have no frame number: order 0
}


def _rows(path: Path, kind: str, domain: str, n_buckets: int, bad: BadRecordLog) -> Iterator[pa.RecordBatch]:
    n_fields = 3 if kind == "media" and domain != "page" else 2
    for fields, lines in read_fields(path, n_fields, bad):
        if kind == "pairs":
            product, sample = fields
            ok = pc.and_(_integers(product, lines, path, "product id", bad),
                         _integers(sample, lines, path, f"{domain} id", bad))
            ids = pc.cast(pc.filter(sample, ok), pa.int64())
            columns = {"product": pc.filter(product, ok), "id": ids}
        elif kind == "texts":
            sample, text = fields
            ok = _integers(sample, lines, path, f"{domain} id", bad)
            has_nul = pc.match_substring(text, "\x00")
            _report(pc.and_(ok, has_nul), text, lines, path, "text contains NUL bytes", bad)
            ok = pc.and_(ok, pc.invert(has_nul))
            text = pc.filter(text, ok)
            text = pc.replace_substring_regex(text, r"\s+", " ")
            text = pc.utf8_slice_codeunits(text, 0, MAX_TEXT_CHARS)
            text = pc.if_else(pc.equal(text, EMPTY_TEXT), pa.scalar("", pa.string()), text)
            ids = pc.cast(pc.filter(sample, ok), pa.int64())
            columns = {"id": ids, "text": text}
        else:
            sample, *order, name = fields
            ok = _integers(sample, lines, path, f"{domain} id", bad)
            if order:
                what = "frame number" if domain == "video" else "timestamp"
                ok = pc.and_(ok, _integers(order[0], lines, path, what, bad))
            name = image_file_name(name)
            empty = pc.equal(pc.utf8_length(name), 0)
            _report(pc.and_(ok, empty), fields[-1], lines, path, "no image name", bad)
            ok = pc.and_(ok, pc.invert(empty))
            ids = pc.cast(pc.filter(sample, ok), pa.int64())
            orders = pc.cast(pc.filter(order[0], ok), pa.int64()) if order else pa.array(
                np.zeros(len(ids), np.int64))
            columns = {"id": ids, "order": orders, "name": pc.filter(name, ok)}
        kept_lines = pc.filter(lines, ok)
        bucket = pa.array((ids.to_numpy() % n_buckets).astype(np.int32))
        yield pa.RecordBatch.from_arrays([*columns.values(), kept_lines, bucket], schema=SPILL_SCHEMAS[kind])


# -- assembling one bucket ------------------------------------------------------------------------------------------
def _read_bucket(spill: Path, kind: str, bucket: int) -> pa.Table | None:
    part = spill / kind / f"{bucket}.arrow"
    if not part.exists():
        return None
    with pa.ipc.open_stream(str(part)) as reader:
        return reader.read_all().combine_chunks()


def _assemble(spill: Path, bucket: int, files: dict[str, Path], names: tuple[str, str, str], domain: str,
              split: str, tag: str, bad: BadRecordLog, titles: dict[str, tuple[int, str]],
              products: set[str]) -> pa.Table:
    pair_file, text_file, media_file = (files[n].name for n in names)
    pairs = _read_bucket(spill, "pairs", bucket)
    media = _read_bucket(spill, "media", bucket)
    texts = _read_bucket(spill, "texts", bucket)
    if pairs is None:
        pairs = pa.table({"product": pa.array([], pa.string()), "id": pa.array([], pa.int64()),
                          "line": pa.array([], pa.int64())})

    def record(sample_id: int) -> str:
        return f"{domain}/{tag}{sample_id}"

    # pairs: one product per sample; repeated rows are reported, the first (in file order) is kept
    ids, product, line = (pairs.column(c).to_numpy(zero_copy_only=False) for c in ("id", "product", "line"))
    order, first = _first_per_id(ids, line)
    ids, product = ids[order], product[order]
    for i in np.flatnonzero(~first):
        kept = product[np.searchsorted(ids, ids[i])]
        problem = (f"listed twice in {pair_file}" if product[i] == kept
                   else f"listed for two products in {pair_file} ({kept} and {product[i]}); kept {kept}")
        bad.add(record(ids[i]), problem, "rope")
    ids, product = ids[first], product[first]

    # media: ordered by frame number / timestamp (then file order); repeated rows reported, first kept
    if media is None or media.num_rows == 0:
        media_ids, names_list = np.zeros(0, np.int64), pa.array([], pa.list_(pa.string()))
    else:
        m_id, m_order, m_line = (media.column(c).to_numpy() for c in ("id", "order", "line"))
        m_name = media.column("name").chunk(0) if media.column("name").num_chunks else pa.array([], pa.string())
        order = np.lexsort((m_line, m_order, m_id))
        m_id, m_order = m_id[order], m_order[order]
        m_name = m_name.take(pa.array(order))
        # pages have no frame number: there only an identical row (same image) is a repeat
        key = np.asarray(m_name.to_pylist(), object) if domain == "page" else m_order
        repeat = np.r_[False, (m_id[1:] == m_id[:-1]) & (key[1:] == key[:-1])]
        what = {"page": "image", "video": "frame number", "live": "timestamp"}[domain]
        for i in np.flatnonzero(repeat):
            detail = f" {m_order[i]}" if domain != "page" else f" {m_name[i].as_py()}"
            bad.add(record(m_id[i]), f"{what}{detail} listed twice in {media_file}", "rope")
        keep = pa.array(~repeat)
        m_id, m_name = m_id[~repeat], m_name.filter(keep)
        unknown = ~np.isin(m_id, ids)
        for sample_id in np.unique(m_id[unknown]):
            bad.add(record(sample_id), f"listed in {media_file} but in no row of {pair_file}", "rope")
        m_id, m_name = m_id[~unknown], m_name.filter(pa.array(~unknown))
        starts = np.flatnonzero(np.r_[True, m_id[1:] != m_id[:-1]]) if len(m_id) else np.zeros(0, np.int64)
        offsets = pa.array(np.r_[starts, len(m_id)].astype(np.int32))
        media_ids = m_id[starts]
        names_list = pa.ListArray.from_arrays(offsets, m_name)

    has_media = np.isin(ids, media_ids)
    for sample_id in ids[~has_media]:
        bad.add(record(sample_id), f"no {'image' if domain == 'page' else 'frame'} listed in {media_file}", "rope")
    ids, product = ids[has_media], product[has_media]
    images = names_list.take(pa.array(np.searchsorted(media_ids, ids)))

    # text: one per sample; repeats reported, text for unknown samples reported
    text = pa.nulls(len(ids), pa.string())
    if texts is not None and texts.num_rows:
        t_id, t_line = texts.column("id").to_numpy(), texts.column("line").to_numpy()
        order, first_t = _first_per_id(t_id, t_line)
        t_id, t_text = t_id[order], texts.column("text").chunk(0).take(pa.array(order))
        for i in np.flatnonzero(~first_t):
            bad.add(record(t_id[i]), f"has a second text row in {text_file} (the first is kept)", "rope")
        t_id, t_text = t_id[first_t], t_text.filter(pa.array(first_t))
        unknown = ~np.isin(t_id, ids)
        for sample_id in t_id[unknown]:
            bad.add(record(sample_id), f"listed in {text_file} but in no row of {pair_file}", "rope")
        pos = np.searchsorted(t_id, ids)  # t_id is sorted and unique
        found = pos < len(t_id)
        found[found] = t_id[pos[found]] == ids[found]
        taken = t_text.take(pa.array(np.where(found, pos, 0)))
        text = pc.if_else(pa.array(found), taken, text)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)

    product_ids = pa.array(product, pa.string())
    if tag:
        product_ids = pc.binary_join_element_wise(pa.scalar(tag), product_ids, "")
    products.update(pc.unique(product_ids).to_pylist())
    n = len(ids)
    sample_ids = pc.binary_join_element_wise(pa.scalar(f"{domain}/{tag}"), pa.array(ids).cast(pa.string()), "")
    empty = pa.array([""] * n, pa.string())
    if domain == "page":
        title, asr = pc.fill_null(text, ""), pa.nulls(n, pa.string())
        _first_titles(product_ids, ids, title, titles)
    else:
        title, asr = empty, text
    return pa.table({"sample_id": sample_ids, "product_id": product_ids, "domain": pa.array([domain] * n),
                     "images": images, "video": pa.nulls(n, pa.string()), "title": title, "text": empty,
                     "asr_text": asr, "split": pa.array([split] * n)}, schema=SAMPLE_SCHEMA)


def _first_per_id(ids: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order that sorts rows by id, then file line; mask over the sorted rows of each id's first row)."""
    order = np.lexsort((lines, ids))
    sorted_ids = ids[order]
    return order, np.r_[True, sorted_ids[1:] != sorted_ids[:-1]] if len(ids) else np.zeros(0, bool)


def _first_titles(products: pa.Array, page_ids: np.ndarray, page_titles: pa.Array,
                  titles: dict[str, tuple[int, str]]) -> None:
    """A product's title: the title of its page with the smallest id that has one (the same whatever the buckets)."""
    has = pc.greater(pc.utf8_length(page_titles), 0).to_numpy(zero_copy_only=False)
    if not has.any():
        return
    prods = np.asarray(products.to_pylist(), object)[has]
    pids, texts = page_ids[has], np.asarray(page_titles.to_pylist(), object)[has]
    for p, pid, text in zip(prods, pids, texts):
        best = titles.get(p)
        if best is None or pid < best[0]:
            titles[p] = (int(pid), text)


def _relative_or_absolute(path: Path, base: Path) -> str:
    """Relative to the manifest when the media folder is inside it (the pair moves together), else absolute."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())
