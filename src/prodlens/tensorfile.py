"""Nested state — weights, optimizer and scheduler state, training history, configuration — in one safetensors
file, written atomically. Tensors (and numpy arrays) are stored as safetensors tensors; everything else (numbers,
text, lists, dicts with any keys, tuples) as JSON in the file's header metadata. Loading parses JSON and raw tensor
bytes only: no pickle, so a file shared by someone else cannot run code when it is opened.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .errors import ProdlensError

FORMAT = "prodlens-state-1"
SUFFIX = ".safetensors"
_META_KEY = "prodlens"


def standalone(tensor):
    """A contiguous CPU copy: tensors that share storage (tied weights, views) cannot be saved side by side."""
    return tensor.detach().cpu().contiguous().clone()


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """`state` → `path` (a safetensors file), atomically."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}

    def encode(value, key: str):
        if isinstance(value, torch.Tensor):
            tensors[key] = standalone(value)
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"__ndarray__": key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: encode(v, f"{key}/{k}") for k, v in value.items()}
            return {"__items__": [[encode(k, f"{key}/{i}k"), encode(v, f"{key}/{i}")]
                                  for i, (k, v) in enumerate(value.items())]}
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v, f"{key}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{key}/{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ProdlensError(f"cannot store {type(value).__name__} at {key!r} in a state file")

    skeleton = encode(state, "")
    metadata = {"format": FORMAT, _META_KEY: json.dumps(skeleton)}
    with atomic.atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_state(path: str | Path) -> dict[str, Any]:
    """The state `save_state` wrote; a clear error for anything else."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ProdlensError(f"{path} is not a prodlens state file (format {metadata.get('format')!r})")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        skeleton = json.loads(metadata[_META_KEY])
    except ProdlensError:
        raise
    except Exception as e:  # a torn or foreign file
        raise ProdlensError(f"cannot read {path}: {e}") from e

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__items__" in value:
            return {decode(k): decode(v) for k, v in value["__items__"]}
        return {k: decode(v) for k, v in value.items()}

    return decode(skeleton)
