"""Content embedding generation (LEARN's CEG): item text → a frozen encoder → one vector per item, cached.

Encoder specs:
- `minilm`, `e5-small`, `st:<name-or-path>`, `hf:<name-or-path>`: sentence encoders (prodlens.encoders);
- `llm:gemma3-270m` / `llm:smollm2-135m` (GGUF models from the wheels, offline; llama.cpp when installed) or
  `llm:<name-or-path>[::file.gguf]`: a causal LM, mean-pooled over the last hidden layer, as LEARN does with
  Baichuan2-7B;
- `embeddings:<file.parquet>`: prodlens product embeddings (`prodlens embed` output), averaged per product, so
  search and recommendation share one item space (item ids must be product ids).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import FeatureCache, model_digest, text_digest
from ..cache import model_key as cache_model_key
from ..embed import Embeddings
from ..encoders import load_text_encoder, weights_digest
from ..errors import ProdlensError
from ..progress import progress_bar
from ..specs import parse_spec
from ..text.llm import OFFLINE_LLMS, llm_engine, load_causal_lm, offline_llm_path


class CausalLMMeanPool:
    """Frozen causal LM; an item's vector is the mean of its last-layer hidden states over its tokens."""

    def __init__(self, name_or_path: str, gguf_file: str | None = None, device: str = "cpu", max_tokens: int = 128,
                 batch_size: int = 16, name: str | None = None):
        import torch

        self.tokenizer, self.model = load_causal_lm(name_or_path, gguf_file, device, padding_side="right",
                                                    dtype=torch.float32)
        self.device, self.max_tokens, self.batch_size = device, max_tokens, batch_size
        self.dim = int(self.model.config.get_text_config().hidden_size)
        self.name = name or f"llm:{name_or_path}" + (f"::{gguf_file}" if gguf_file else "")

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[i] or " " for i in idx], return_tensors="pt", padding=True,
                                       truncation=True, max_length=self.max_tokens).to(self.device)
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[-1]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


class LlamaCppMeanPool:
    """The same mean-pooled last layer computed by llama.cpp from a GGUF file (quantised, in-process, no dequantised
    float32 copy of the weights). Agrees with the transformers path to within quantisation noise."""

    def __init__(self, model_path: str, name: str, n_ctx: int = 512):
        import os

        import llama_cpp

        self.llm = llama_cpp.Llama(model_path, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                                   n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=os.cpu_count(), verbose=False)
        self.dim = int(self.llm.n_embd())
        self.name = name

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.llm.embed([t or " " for t in texts], normalize=False, truncate=True), np.float32)


def content_key(spec: str, device: str = "cpu") -> str:
    """The cache's name for a content encoder: its spec, the content of the weights it resolves to and, for an LLM,
    the engine that runs it (llama.cpp's quantised and transformers' dequantised weights give other vectors)."""
    scheme, target, gguf = parse_spec(spec)
    if scheme != "llm":
        return cache_model_key("content", spec=spec, weights=weights_digest(spec))
    if target in OFFLINE_LLMS:
        return cache_model_key("content", spec=spec, engine=llm_engine(device),
                               weights=model_digest(offline_llm_path(target)))
    return cache_model_key("content", spec=spec, engine="transformers", weights=model_digest(target))


def build_content_encoder(spec: str, device: str = "cpu"):
    scheme, target, gguf = parse_spec(spec)
    if scheme != "llm":
        return load_text_encoder(spec, device)
    if target in OFFLINE_LLMS:
        path = offline_llm_path(target)
        if llm_engine(device) == "llama.cpp":
            return LlamaCppMeanPool(str(path), name=spec)
        return CausalLMMeanPool(str(path.parent), path.name, device, name=spec)
    return CausalLMMeanPool(target, gguf or None, device)


def product_vectors(path: str | Path) -> dict[str, np.ndarray]:
    """product id → mean of its samples' prodlens embeddings (L2-normalised)."""
    emb = Embeddings.load(path)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for pid, v in zip(emb.product_ids, emb.vectors):
        sums[pid] = sums.get(pid, 0) + v
        counts[pid] = counts.get(pid, 0) + 1
    return {pid: (s / max(np.linalg.norm(s), 1e-12)).astype(np.float32) for pid, s in sums.items()}


def content_vectors(item_ids: list[str], texts: list[str], spec: str = "minilm", cache: FeatureCache | None = None,
                    device: str = "cpu", progress: bool = True, batch: int = 256) -> np.ndarray:
    """(n_items, D) float32 content vectors, from the cache where possible (keyed by encoder spec + text hash)."""
    if parse_spec(spec).scheme == "embeddings":
        vectors = product_vectors(spec.split(":", 1)[1])
        missing = [i for i in item_ids if i not in vectors]
        if missing:
            raise ProdlensError(f"{len(missing)} item(s) have no product embedding in {spec[11:]}, e.g. "
                                f"{', '.join(missing[:5])} (item ids must be the catalogue's product ids)")
        return np.stack([vectors[i] for i in item_ids])
    cache = cache if cache is not None else FeatureCache(None)
    model_key = content_key(spec, device)
    keys = [text_digest(t) for t in texts]
    cached = cache.get_many(model_key, "item", list(set(keys)))
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in cached}.items())
    if todo:
        encoder = build_content_encoder(spec, device)
        with progress_bar(len(todo), f"encoding item texts ({spec})", enabled=progress) as advance:
            for start in range(0, len(todo), batch):
                part = todo[start:start + batch]
                vecs = encoder.encode([t for _, t in part])
                new = {k: v.astype(np.float32) for (k, _), v in zip(part, vecs)}
                cache.put_many(model_key, "item", new)
                cached.update(new)
                advance(len(part))
    return np.stack([cached[k] for k in keys]).astype(np.float32)
