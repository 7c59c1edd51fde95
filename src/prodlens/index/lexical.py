"""Lexical retrieval beside the vectors: BM25 (bm25s) over each indexed sample's text — titles, category, page
description, clip speech — and reciprocal rank fusion (RRF) of its ranking with the vector ranking.

A brand or model name typed exactly ("tropicana mandarin") is matched word for word here, where an embedding has to
carry it through a sentence encoder fused with image features. RRF (Cormack et al. 2009) adds 1 / (k + rank) over
the rankings an item appears in; it needs no score calibration between BM25 and cosines, and its k = 60 is the
published constant, not tuned here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

RRF_K = 60
TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset("a an and are as at be by for from has have in is it its of on or that the this to was were "
                      "will with i you we me my our your".split())


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, stop words dropped, a plural 's' stripped ("apples" finds "apple")."""
    out = []
    for token in TOKEN.findall(text.lower()):
        if token in STOPWORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        out.append(token)
    return out


class LexicalIndex:
    """BM25 over documents whose index item ids are `ids` (document n ↔ item ids[n])."""

    def __init__(self, bm25, ids: np.ndarray):
        """`bm25`: None when no document has a word (nothing can match)."""
        self.bm25 = bm25
        self.ids = np.asarray(ids, dtype=np.int64)

    @classmethod
    def build(cls, texts: list[str], ids) -> "LexicalIndex":
        import bm25s

        tokens = [tokenize(t) for t in texts]
        bm25 = None
        if any(tokens):
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, text: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, BM25 scores) of up to k documents sharing a word with `text`, best first; `allowed`: only
        these item ids."""
        tokens = tokenize(text)
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.bm25 is None or not tokens or not any(t in self.bm25.vocab_dict for t in tokens):
            return empty
        mask = None
        if allowed is not None:
            mask = np.isin(self.ids, allowed).astype(np.float32)
            if not mask.any():
                return empty
        k = min(k, len(self.ids))
        docs, scores = self.bm25.retrieve([tokens], k=k, show_progress=False, weight_mask=mask, n_threads=1)
        docs, scores = docs[0], scores[0]
        keep = scores > 0
        return self.ids[docs[keep]], scores[keep].astype(np.float32)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.bm25 is not None:
            self.bm25.save(str(directory), show_progress=False)
        np.save(directory / "ids.npy", self.ids)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Arrays and JSON only (no pickles): loading an index never runs code."""
        import bm25s

        ids = np.load(directory / "ids.npy", allow_pickle=False)
        indexed = (directory / "params.index.json").exists()
        return cls(bm25s.BM25.load(str(directory), allow_pickle=False) if indexed else None, ids)


def fuse(rankings: list[np.ndarray], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion of rankings of item ids (each best first) → (ids, fused scores), best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking):
            scores[int(i)] = scores.get(int(i), 0.0) + 1.0 / (k + rank + 1)
    order = sorted(scores, key=lambda i: -scores[i])
    return np.array(order, dtype=np.int64), np.array([scores[i] for i in order], dtype=np.float32)
