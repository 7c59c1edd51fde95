"""Delimited text files (CSV, TSV) read row by row, each row with the line it starts on, so that every loader keeps
each row's fields together and names a bad row by its line. Rows are never joined, dropped or shifted silently: a row
is either yielded whole or reported.

- The delimiter is the header's: a tab makes the file TSV (no quoting: a quote is a character, a tab always ends a
  field), else CSV with double quotes (a quoted field may hold commas, tabs and newlines).
- A byte-order mark, CRLF line ends and blank lines are accepted; a row whose field count differs from the header's,
  a row that is not valid UTF-8 and a field over `max_field` characters are reported with their line number.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Iterable, Iterator

from .errors import BadRecords, ProdlensError

MAX_FIELD = 4 << 20  # characters in one field; a longer one is a bad row (a runaway quote swallowing the file?)


def is_tab_separated(path: Path, header: str) -> bool:
    return "\t" in header or path.suffix in (".tsv", ".inter", ".text", ".txt")


def _reader(stream, tab: bool):
    if tab:
        return csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(stream)


def _open_text(path: Path):
    """Text with invalid UTF-8 bytes kept as lone surrogates (so a bad row can be named, not the whole file)."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _has_bad_bytes(values: Iterable[str]) -> bool:
    return any(any("\udc80" <= ch <= "\udcff" for ch in v) for v in values)


def _all_rows(path: Path, max_field: int) -> Iterator[tuple[int, list[str], list[str], str | None]]:
    """(start line, header, values, problem or None) of every non-blank data row."""
    if not path.is_file():
        raise ProdlensError(f"{path} not found")
    csv.field_size_limit(min(sys.maxsize, 1 << 62))
    with _open_text(path) as stream:
        first = stream.readline()
        if not first.strip():
            raise ProdlensError(f"{path} is empty (no header row)")
        tab = is_tab_separated(path, first)
        header = next(_reader(io.StringIO(first), tab))
        if _has_bad_bytes(header):
            raise ProdlensError(f"{path} line 1: the header is not valid UTF-8")
        header = [h.strip() for h in header]
        reader = _reader(stream, tab)
        line = 2  # the line the next row starts on
        while True:
            start = line
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                line = reader.line_num + 2
                yield start, header, [], f"unreadable row ({e})"
                continue
            line = reader.line_num + 2
            if not values:
                continue  # a blank line
            problem = None
            if len(values) != len(header):
                problem = (f"expected {len(header)} fields ({', '.join(header)}), got {len(values)}"
                           + (" (a tab inside a field?)" if tab and len(values) > len(header) else ""))
            elif _has_bad_bytes(values):
                problem = "not valid UTF-8"
            else:
                long = [h for h, v in zip(header, values) if len(v) > max_field]
                if long:
                    problem = f"field {long[0]} is over {max_field} characters"
            yield start, header, values, problem


def read_rows(path: str | Path, bad: BadRecords, stage: str, max_field: int = MAX_FIELD
              ) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for every good data row of a CSV/TSV file with a header; each bad row is added
    to `bad` as "<file> line N" with its problem. Values keep their text as written (no trimming)."""
    path = Path(path)
    for line, header, values, problem in _all_rows(path, max_field):
        if problem is not None:
            bad.add(f"{path.name} line {line}", problem, stage)
        else:
            yield line, dict(zip(header, values))


def line_numbers(path: str | Path, rows: Iterable[int], dropped: bool = True
                 ) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """What a bulk (columnar) loader needs to name the few rows it reports, in one pass over the file: the line of
    each given 0-based data row, counting the rows with the header's field count (the rows such a reader keeps), and
    with `dropped`, (line, problem) of every row whose field count is not the header's (the rows it drops; without,
    the pass stops at the last row asked for)."""
    wanted = set(rows)
    found: dict[int, int] = {}
    gone: list[tuple[int, str]] = []
    n = 0
    for line, header, values, problem in _all_rows(Path(path), sys.maxsize):
        if len(values) != len(header):
            gone.append((line, problem))
            continue
        if n in wanted:
            found[n] = line
            if len(found) == len(wanted) and not dropped:
                break
        n += 1
    return found, gone if dropped else []


def read_lines(path: str | Path, bad: BadRecords, stage: str) -> list[str]:
    """The non-blank lines of a text file (one record a line, e.g. queries), stripped; a BOM and CRLF line ends are
    accepted, and a line that is not valid UTF-8 is reported by its number and skipped, not the whole file."""
    path = Path(path)
    out = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            bad.add(f"{path.name} line {number}", f"not valid UTF-8 (byte {e.start})", stage)
            continue
        if text:
            out.append(text)
    return out
