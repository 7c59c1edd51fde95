"""Errors that name the record at fault, and the list batch jobs keep of records they skipped."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


class ProdlensError(Exception):
    """Base class: any error prodlens raises on purpose."""


class RecordError(ProdlensError):
    """One record (a product, a sample, a manifest row, a file) cannot be used."""

    def __init__(self, record: str, problem: str):
        self.record = record
        self.problem = problem
        super().__init__(f"{record}: {problem}")


class MediaError(RecordError):
    """An image, video or audio file is missing, unreadable or corrupt."""


@dataclass(frozen=True)
class BadRecord:
    record: str
    problem: str
    stage: str = ""

    def __str__(self) -> str:
        where = f"[{self.stage}] " if self.stage else ""
        return f"{where}{self.record}: {self.problem}"


@dataclass
class BadRecords:
    """Collects records a batch job skipped so it can report them all at the end."""

    items: list[BadRecord] = field(default_factory=list)

    def add(self, record: str, problem: str, stage: str = "") -> None:
        self.items.append(BadRecord(record, problem, stage))

    def add_error(self, error: RecordError, stage: str = "") -> None:
        self.add(error.record, error.problem, stage)

    def extend(self, other: "BadRecords | list[BadRecord]") -> None:
        self.items.extend(other.items if isinstance(other, BadRecords) else other)

    def records(self) -> set[str]:
        return {b.record for b in self.items}

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def as_dicts(self) -> list[dict]:
        return [{"record": b.record, "problem": b.problem, "stage": b.stage} for b in self.items]


class BadRecordLog:
    """Bad records of a job too large to keep them all in memory: every one goes to a JSON-lines file (written to
    a temporary name and renamed on close, so a crash never leaves a half log under the real name), the first
    `keep` stay in memory for the terminal and the report."""

    def __init__(self, path, keep: int = 200):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self.keep = keep
        self.items: list[BadRecord] = []
        self.count = 0

    def add(self, record: str, problem: str, stage: str = "") -> None:
        self.count += 1
        if len(self.items) < self.keep:
            self.items.append(BadRecord(record, problem, stage))
        self._file.write(json.dumps({"record": record, "problem": problem, "stage": stage}, ensure_ascii=False) + "\n")

    def add_error(self, error: RecordError, stage: str = "") -> None:
        self.add(error.record, error.problem, stage)

    def head(self) -> list[dict]:
        return [{"record": b.record, "problem": b.problem, "stage": b.stage} for b in self.items]

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)

    def __len__(self) -> int:
        return self.count
