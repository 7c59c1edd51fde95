"""A persistent feature cache keyed by (model, kind, content hash): SQLite in WAL mode.

Each batch is one transaction, so a crash loses at most the batch in flight and never corrupts what is stored.
Keys are content hashes (file bytes, text), so renamed or moved files still hit and edited files miss.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    model TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (model, kind, key)
);
CREATE TABLE IF NOT EXISTS records (
    model TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (model, kind, key)
)"""


def default_cache_dir() -> Path:
    env = os.environ.get("PRODLENS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "prodlens"


class FeatureCache:
    def __init__(self, path: str | Path | None = None):
        """`path`: a directory (the file `features.sqlite` goes in it), a `.sqlite` file, or None for memory only."""
        if path is None:
            target = ":memory:"
        else:
            path = Path(path).expanduser()
            if path.suffix != ".sqlite":
                path.mkdir(parents=True, exist_ok=True)
                path = path / "features.sqlite"
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
        self.path = target
        self._lock = threading.Lock()
        self._db = sqlite3.connect(target, check_same_thread=False, timeout=60)
        if target != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, model: str, kind: str, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, dtype, shape, data FROM features WHERE model=? AND kind=? AND key IN ({marks})",
                    [model, kind, *chunk]).fetchall()
                for key, dtype, shape, data in rows:
                    dims = tuple(int(d) for d in shape.split(",") if d)
                    found[key] = np.frombuffer(data, dtype=dtype).reshape(dims).copy()
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def get(self, model: str, kind: str, key: str) -> np.ndarray | None:
        return self.get_many(model, kind, [key]).get(key)

    def put_many(self, model: str, kind: str, items: dict[str, np.ndarray]) -> None:
        rows = []
        for key, arr in items.items():
            arr = np.ascontiguousarray(arr)
            rows.append((model, kind, key, arr.dtype.str, ",".join(map(str, arr.shape)), arr.tobytes()))
        with self._lock, self._db:  # one transaction
            self._db.executemany("INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?)", rows)

    def get_record(self, model: str, kind: str, key: str) -> dict | None:
        """A JSON record (transcripts, summaries...) stored under the same (model, kind, key) scheme."""
        with self._lock:
            row = self._db.execute("SELECT value FROM records WHERE model=? AND kind=? AND key=?",
                                   [model, kind, key]).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put_record(self, model: str, kind: str, key: str, value: dict) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?)",
                             [model, kind, key, json.dumps(value, ensure_ascii=False)])

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM features WHERE model=?", [model]).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, memoised per (path, size, mtime) for the life of the process."""
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _HASH_MEMO.get(memo_key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        _HASH_MEMO[memo_key] = digest
    return digest


def dir_digest(path: Path) -> str:
    """sha256 over a file's or directory's content: every file's relative path and bytes (caches and compiled
    Python left out), so a model directory retrained or edited in place gets a new digest."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and not p.name.startswith(".") and p.suffix != ".pyc")
    return combine_digests([f"{p.relative_to(path).as_posix()}:{file_digest(p)}" for p in files])


def model_digest(target: str | Path) -> str:
    """What a model at `target` is, without loading it: the digest of a local file's or directory's content (a model
    retrained in place is another model), or its name when it is not on disk (a hub or server model: its name is all
    that is known of it here)."""
    local = Path(target)
    return dir_digest(local)[:16] if local.exists() else f"name:{target}"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def combine_digests(parts: list[str], *extra: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    for e in extra:
        h.update(repr(e).encode())
    return h.hexdigest()


def model_key(name: str, **identity: object) -> str:
    """The one way a cache names what produced an entry: a name, then every part of the producing model's identity
    (weights digests, versions of rules and prompts, the engine) and every setting that changes the output, sorted
    by key. Two computations that can give different outputs never share a key; a key never depends on the order
    its parts were given in. None-valued parts are left out (a setting that does not apply)."""
    parts = [f"{k}={identity[k]}" for k in sorted(identity) if identity[k] is not None]
    return "|".join([name, *parts])


def open_cache(cache_dir: str | Path | None = None, no_cache: bool = False) -> FeatureCache:
    """The feature cache at `cache_dir` (default: $PRODLENS_CACHE or ~/.cache/prodlens), or none at all."""
    return FeatureCache(None) if no_cache else FeatureCache(cache_dir or default_cache_dir())
