"""Reading the text attached to records: strict UTF-8, size limits, whitespace normalised."""
from __future__ import annotations

from pathlib import Path

from ..errors import RecordError

MAX_TEXT_CHARS = 20_000  # far beyond any title/description; longer text is cut (encoders truncate anyway)
MAX_TEXT_FILE_BYTES = 4 * 1024 * 1024


def clean_text(text: str, record: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if "\x00" in text:
        raise RecordError(record, "text contains NUL bytes (binary data?)")
    text = " ".join(text.split())
    return text[:max_chars]


def read_text_file(path: Path, record: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Read a sidecar text file as UTF-8; a missing, huge or non-UTF-8 file is a RecordError naming `record`."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RecordError(record, f"text file not found: {path}") from None
    if size > MAX_TEXT_FILE_BYTES:
        raise RecordError(record, f"text file {path.name} is {size} bytes (limit {MAX_TEXT_FILE_BYTES})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordError(record, f"text file {path.name} is not valid UTF-8 (byte {e.start})") from None
    return clean_text(text, record, max_chars)
