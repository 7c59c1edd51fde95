"""Run directories shared by the trainers (the embedding trainer and the recommender): checkpoints written
atomically, the metrics log, and resuming — which must continue the run that wrote the checkpoint.

Checkpoints are safetensors files (`prodlens.tensorfile`): opening one never unpickles. A checkpoint stores the
configuration it was trained with. Resuming under another configuration would silently
report the old run (its weights, its learning rate in the optimizer state) as if it were the new one, so a resume
compares the two and refuses any difference outside the few keys that only bound how long the run goes on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ProdlensError
from .tensorfile import SUFFIX, load_state, save_state

BEST, LAST = f"best{SUFFIX}", f"last{SUFFIX}"
LEGACY_SUFFIX = ".pt"  # torch pickles of releases before issue 25: `prodlens model convert` rewrites them


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} → {"train.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_changes(saved: dict[str, Any], current: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable differences between two (nested) configurations, e.g. "train.lr: 0.001 → 0.003"."""
    a, b, skip = flatten(saved), flatten(current), set(ignore)
    missing = object()
    changes = []
    for key in sorted(set(a) | set(b)):
        if key in skip:
            continue
        old, new = a.get(key, missing), b.get(key, missing)
        # JSON round trips turn tuples into lists; compare what a config file would hold
        if json.dumps(old, default=str, sort_keys=True) != json.dumps(new, default=str, sort_keys=True):
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            changes.append(f"{key}: {show(old)} → {show(new)}")
    return changes


def check_resume(checkpoint: Path, saved: dict[str, Any], current: dict[str, Any],
                 ignore: Iterable[str] = ()) -> None:
    """Raise when `current` is not the configuration `checkpoint` was trained with."""
    changes = config_changes(saved, current, ignore)
    if changes:
        raise ProdlensError(f"cannot resume {checkpoint}: it was trained with another configuration ("
                            + "; ".join(changes[:8]) + ("; ..." if len(changes) > 8 else "")
                            + "). Resume with the same settings, or start a new run directory.")


def config_digest(config: dict[str, Any], length: int = 10) -> str:
    """A short stable name for a configuration (run directories of benchmarks are keyed by it)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class RunDir:
    """`best.safetensors` / `last.safetensors` checkpoints and `metrics.jsonl` in one directory.

    `start(resume, identity, ignore)` opens the run: with `resume` and a last checkpoint, it checks that the checkpoint's
    identity (its configuration, the catalogue it was trained on, ...) is the current one and returns its state;
    otherwise the run starts fresh (an old metrics log is cleared, so a new run never appends to it)."""

    METRICS = "metrics.jsonl"

    def __init__(self, path: str | Path, writer: bool = True):
        self.path = Path(path)
        self.writer = writer  # only one process (rank 0) writes
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)

    def start(self, resume: bool, identity: dict[str, Any], ignore: Iterable[str] = (),
              upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict | None:
        """`upgrade`: the saved identity as the current code would write it (settings added since take their
        defaults), so a run saved by an earlier release resumes."""
        last = self.path / LAST
        if resume and not last.exists() and (self.path / f"last{LEGACY_SUFFIX}").exists():
            raise legacy_error(self.path / f"last{LEGACY_SUFFIX}")
        if resume and last.exists():
            state = self.load(LAST)
            saved = {k: state.get("identity", state).get(k) for k in identity}
            check_resume(last, upgrade(saved) if upgrade else saved, identity, ignore)
            return state
        if self.writer:
            (self.path / self.METRICS).unlink(missing_ok=True)
        return None

    def save(self, name: str, state: dict[str, Any], identity: dict[str, Any] | None = None) -> None:
        if not self.writer:
            return
        if identity is not None:
            state = {**state, "identity": identity}
        save_state(self.path / name, state)

    def load(self, name: str = BEST) -> dict[str, Any]:
        return load_state(self.path / name)

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def log(self, row: dict[str, Any]) -> None:
        if self.writer:
            with open(self.path / self.METRICS, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


def legacy_error(path: Path) -> ProdlensError:
    return ProdlensError(f"{path} is a checkpoint in the old pickle format, which prodlens no longer opens (a pickle "
                         f"can run code when loaded): convert it once with `prodlens model convert {path}`")


def convert_legacy(path: str | Path) -> list[Path]:
    """Old `.pt` checkpoints (a file, or every one in a run directory) rewritten as safetensors state files beside
    them. Read by torch's restricted loader (`weights_only=True`: tensors, numbers, text and containers only), so
    a tampered file is refused rather than run."""
    import torch

    path = Path(path)
    sources = sorted(path.glob(f"*{LEGACY_SUFFIX}")) if path.is_dir() else [path]
    if not sources or not all(p.is_file() and p.suffix == LEGACY_SUFFIX for p in sources):
        raise ProdlensError(f"no {LEGACY_SUFFIX} checkpoint at {path}")
    written = []
    for source in sources:
        try:
            state = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ProdlensError(f"cannot convert {source}: the restricted loader refused it ({e})") from e
        target = source.with_suffix(SUFFIX)
        save_state(target, state)
        written.append(target)
    return written


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint a path names: a run directory's best, else its last; or a checkpoint file. A checkpoint of an
    earlier release (a pickle) is named, with how to convert it."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).exists():
                return path / name
        for name in (BEST, LAST):
            legacy = (path / name).with_suffix(LEGACY_SUFFIX)
            if legacy.exists():
                raise legacy_error(legacy)
        raise ProdlensError(f"no checkpoint ({BEST} or {LAST}) in {path}")
    if path.suffix == LEGACY_SUFFIX:
        raise legacy_error(path)
    if not path.exists():
        raise ProdlensError(f"checkpoint {path} not found")
    return path
