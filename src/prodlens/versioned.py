"""One versioned store under every on-disk collection that is edited while it is read: the product index, a
recommender run's item table and its HNSW graph.

    DIR/
      <MANIFEST>      a small JSON document naming the files (or directories) of the current version; replaced
                      atomically, so a reader sees the previous version or the next, whole
      .lock           writers hold it from reading the manifest to committing the next one, so two writers never
                      lose each other's update
      <entries>       immutable once a manifest names them; a commit removes the entries no manifest names any more

Readers never lock: `read` retries when the version it was reading is removed by a writer meanwhile.
"""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from . import atomic
from .errors import ProdlensError

T = TypeVar("T")
LOCK_TIMEOUT = 600.0  # seconds a writer waits for another's commit (a commit writes files; it does not embed)
READ_ATTEMPTS = 20


class VersionedStore:
    """`manifest`: the manifest's file name; `entries`: glob patterns of the files and directories versions are made
    of (what cleanup may remove); `what`: the store named in messages ("the item table /x")."""

    def __init__(self, path: str | Path, manifest: str, entries: Iterable[str], what: str,
                 encode: Callable[[dict], str] | None = None, decode: Callable[[str], dict] | None = None):
        """`encode` / `decode`: the manifest's text form when it is not JSON (the index's CURRENT names a version)."""
        self.path = Path(path)
        self.manifest_path = self.path / manifest
        self.entries = tuple(entries)
        self.what = what
        self.encode = encode or (lambda manifest: json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        self.decode = decode or json.loads

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict | None:
        """The current manifest, or None when the store has none yet."""
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return self.decode(text)
        except ValueError as e:
            raise ProdlensError(f"{self.manifest_path} is not a manifest of {self.what} ({e})") from None

    def read(self, reader: Callable[[dict], T]) -> T:
        """`reader(manifest)` of the current version; read again when a writer removed that version's entries while
        it was being read (FileNotFoundError)."""
        for attempt in range(READ_ATTEMPTS):
            manifest = self.manifest()
            if manifest is None:
                raise ProdlensError(f"{self.what} has no {self.manifest_path.name}")
            try:
                return reader(manifest)
            except FileNotFoundError:
                if attempt == READ_ATTEMPTS - 1 or self.manifest() == manifest:
                    raise
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def writing(self, timeout: float = LOCK_TIMEOUT) -> Iterator["Commit"]:
        """The writer's lock, held for the block: `commit.manifest` is the current manifest as read under the lock
        (None: a new store); `commit(new, keep)` replaces it and removes the entries `keep` does not name."""
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic.file_lock(self.path / ".lock", timeout, self.what):
            yield Commit(self, self.manifest())

    def remove_unlisted(self, keep: set[str]) -> None:
        """Entries no manifest names (by name up to the first dot, so a segment's files go together), and the
        temporary files of crashed writers. A reader that opened an earlier version keeps its open files and maps
        (POSIX keeps an unlinked file's data while it is open)."""
        for pattern in self.entries:
            unlisted = [p for p in self.path.glob(pattern) if p.name.split(".")[0] not in keep and p.name not in keep]
            for p in unlisted + list(self.path.glob(f".{pattern}")):  # + a crashed writer's temporary files
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


class Commit:
    def __init__(self, store: VersionedStore, manifest: dict | None):
        self.store, self.manifest = store, manifest

    def __call__(self, manifest: dict, keep: Iterable[str]) -> None:
        """Make `manifest` current (atomically), then remove the entries `keep` does not name."""
        atomic.write_text(self.store.manifest_path, self.store.encode(manifest))
        self.manifest = manifest
        self.store.remove_unlisted(set(keep))
