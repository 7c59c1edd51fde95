"""Fetching ROPE's images: every name in the page-image and frame lists, from a URL prefix into one media folder.

- concurrent: `workers` threads, with at most a few requests queued per worker, so tens of millions of names stream
  through without a future or a name list per image in memory;
- resumable: a name whose file exists is skipped; a download is written under `.partial/` and renamed into place
  only when complete and checked, so a partial file never carries a final name;
- retried with exponential backoff on timeouts, broken connections, truncated bodies, 429 and 5xx; 404-type
  answers are final;
- rate-limited (`rate` requests per second over all workers, a token bucket);
- checked: the body must be a whole image (JPEG with its end marker, PNG, GIF or WebP);
- reported: every name that failed, with the reason, in a TSV (written atomically) and in the returned report.
"""
from __future__ import annotations

import concurrent.futures as cf
import http.client
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow.compute as pc

from .. import atomic
from ..errors import BadRecordLog, ProdlensError
from ..progress import progress_bar
from .rope import DOMAIN_FILES, SPLIT_PREFIXES, image_file_name, read_fields, split_files

FINAL_HTTP = {400, 401, 403, 404, 410, 451}
PARTIAL_DIR = ".partial"


@dataclass
class DownloadReport:
    requested: int = 0
    downloaded: int = 0
    skipped: int = 0  # already in the media folder
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first ones; all are in the TSV
    report_path: Path | None = None


class RateLimit:
    """At most `rate` acquisitions per second over all threads (None: no limit)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            wait = self.next - now
            self.next = max(now, self.next) + self.interval
        if wait > 0:
            time.sleep(wait)


class _Retry(Exception):
    pass


class _Final(Exception):
    pass


def image_problem(data: bytes) -> str | None:
    """Why `data` is not a whole image, or None."""
    if not data:
        return "empty body"
    if data[:3] == b"\xff\xd8\xff":
        return None if b"\xff\xd9" in data[-64:] else "truncated JPEG (no end marker)"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return None if data[-8:-4] == b"IEND" else "truncated PNG"
    if data[:6] in (b"GIF87a", b"GIF89a") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return None
    return f"not an image (starts with {data[:12]!r})"


def _bare_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\x00" not in name


def download_images(names: Iterable[str], media_dir: str | Path, url_prefix: str, workers: int = 16,
                    rate: float | None = None, retries: int = 3, timeout: float = 30.0, backoff: float = 0.5,
                    total: int | None = None, report_path: str | Path | None = None,
                    progress: bool = True, max_bytes: int = 50 << 20) -> DownloadReport:
    media = Path(media_dir)
    media.mkdir(parents=True, exist_ok=True)
    partial = media / PARTIAL_DIR
    shutil.rmtree(partial, ignore_errors=True)  # what a killed run left half-written; never under a final name
    partial.mkdir()
    report = DownloadReport(report_path=Path(report_path) if report_path else media / "download-failures.tsv")
    failures = BadRecordLog(report.report_path.with_suffix(".jsonl"), keep=200)
    limiter = RateLimit(rate)
    lock = threading.Lock()
    started = time.monotonic()

    def fetch(name: str) -> tuple[str, str, int]:
        """(name, outcome, bytes): outcome is 'downloaded', 'skipped' or the failure reason."""
        if not _bare_name(name):
            return name, "not a bare file name", 0
        target = media / name
        if target.is_file() and target.stat().st_size > 0:
            return name, "skipped", 0
        url = url_prefix + urllib.parse.quote(name)
        last = ""
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            limiter.acquire()
            try:
                data = _get(url, timeout, max_bytes)
            except _Final as e:
                return name, str(e), 0
            except _Retry as e:
                last = str(e)
                continue
            problem = image_problem(data)
            if problem:
                last = problem
                if problem.startswith("not an image"):
                    return name, problem, 0  # the server answered, with something else: asking again won't help
                continue
            tmp = partial / f"{name}.{threading.get_ident()}"
            tmp.write_bytes(data)
            os.replace(tmp, target)
            return name, "downloaded", len(data)
        return name, f"{last}; gave up after {retries + 1} attempts", 0

    def record(outcome: tuple[str, str, int]) -> None:
        name, what, size = outcome
        with lock:
            if what == "downloaded":
                report.downloaded += 1
                report.bytes += size
            elif what == "skipped":
                report.skipped += 1
            else:
                report.failed += 1
                failures.add(name, what, "download")

    with progress_bar(total or 0, "downloading images", enabled=progress) as advance, \
            cf.ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: set[cf.Future] = set()
        for name in names:
            report.requested += 1
            in_flight.add(pool.submit(fetch, name))
            if len(in_flight) >= 4 * workers:  # bounded: names are streamed, not all submitted at once
                done, in_flight = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    record(fut.result())
                    advance(1)
        for fut in cf.as_completed(in_flight):
            record(fut.result())
            advance(1)
    failures.close()
    report.failures = [(b.record, b.problem) for b in failures.items]
    _write_tsv(failures.path, report.report_path)
    failures.path.unlink(missing_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


def _get(url: str, timeout: float, max_bytes: int) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "prodlens-download/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _Final(f"too large ({length} bytes)")
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise _Final(f"too large (over {max_bytes} bytes)")
            if length and length.isdigit() and len(data) != int(length):
                raise _Retry(f"truncated answer ({len(data)} of {length} bytes)")
            return data
    except urllib.error.HTTPError as e:
        if e.code in FINAL_HTTP:
            raise _Final(f"HTTP {e.code}") from None
        raise _Retry(f"HTTP {e.code}") from None
    except http.client.IncompleteRead as e:
        raise _Retry(f"truncated answer ({len(e.partial)} bytes before the connection closed)") from None
    except (TimeoutError, ConnectionError, urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", e)
        kind = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "connection failed"
        raise _Retry(f"{kind} ({reason})") from None


def _write_tsv(jsonl: Path, out: Path) -> None:
    with atomic.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("name\treason\n")
        if jsonl.exists():
            with open(jsonl, encoding="utf-8") as src:
                for line in src:
                    row = json.loads(line)
                    f.write(f"{row['record']}\t{row['problem']}\n")


def rope_image_names(root: str | Path, splits: tuple[str, ...] | None = None) -> Iterator[str]:
    """Every image name in a ROPE catalogue's page-image and frame lists (URLs reduced to their file names),
    streamed in file order. Unreadable rows are skipped here; `catalog import` reports them."""
    root = Path(root)
    found = False
    for split in splits or tuple(SPLIT_PREFIXES):
        files = split_files(root, split)
        if files is None:
            continue
        found = True
        for domain, (_, _, media_name) in DOMAIN_FILES.items():
            path = files[media_name]
            if not path.exists():
                continue
            for fields, _ in read_fields(path, 2 if domain == "page" else 3, _IgnoreBadRows()):
                yield from pc.unique(image_file_name(fields[-1])).to_pylist()
    if not found:
        raise ProdlensError(f"no ROPE files (training_*_pair.txt / test_*_pair.txt) under {root}")


class _IgnoreBadRows:
    def add(self, record: str, problem: str, stage: str = "") -> None:
        pass


def count_rope_images(root: str | Path, splits: tuple[str, ...] | None = None) -> int:
    """Rows of the image and frame lists (an upper bound of the names, for the progress bar): counted in bytes
    blocks, cheap next to downloading."""
    total = 0
    for split in splits or tuple(SPLIT_PREFIXES):
        files = split_files(Path(root), split)
        for _, (_, _, media_name) in DOMAIN_FILES.items():
            path = files and files[media_name]
            if path and path.exists():
                with open(path, "rb") as f:
                    total += sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))
    return total
