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
