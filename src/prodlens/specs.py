"""Model specs, the one syntax every model choice uses: `[scheme:]target[::extra]`.

    minilm                       → ("", "minilm", None)          a registered name (or a local path)
    hf:org/model                 → ("hf", "org/model", None)
    hf:org/repo::model.gguf      → ("hf", "org/repo", "model.gguf")   a file inside a repository
    llm:gemma3-270m              → ("llm", "gemma3-270m", None)
    http://host:8000/v1::qwen    → ("http", "http://host:8000/v1", "qwen")   the URL stays whole
"""
from __future__ import annotations

from typing import NamedTuple

SCHEMES = ("hf", "st", "llm", "llama", "embeddings", "http", "https")


class ModelSpec(NamedTuple):
    scheme: str
    target: str
    extra: str | None


def parse_spec(spec: str) -> ModelSpec:
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        url, sep, extra = spec.partition("::")
        return ModelSpec(spec.split(":", 1)[0], url, extra if sep else None)
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        scheme, rest = "", spec
    target, sep, extra = rest.partition("::")
    return ModelSpec(scheme, target, extra if sep else None)


def parse_assignments(items: list[str]) -> dict:
    """`--set` assignments, the one grammar for every config: ["train.lr=3e-4", "dim=128"] →
    {"train": {"lr": 0.0003}, "dim": 128}. A dotted key nests; a value is JSON (numbers, true/false, null, lists,
    objects), else a plain string. Which keys exist is checked by the config that takes them."""
    import json

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise ValueError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part} was already set to a value")
        node[path[-1]] = parsed
    return out
