"""Lexical retrieval beside the vectors: BM25 (bm25s) over three fields of each indexed sample — its name (title and
category), its whole text (name, page description, the sample's own text) and the text read in its pictures (OCR,
as character trigrams). Each field's ranking is a signal of the relevance model (prodlens.index.relevance), which
fuses them with the vector's.

A brand or model name typed exactly ("tropicana mandarin") is matched word for word here, where an embedding has to
carry it through a sentence encoder fused with image features. The name is its own field because it is what
shoppers type, and a long description would dilute it (BM25 normalises term frequency by document length; this is
BM25F's field weighting, done by fusion).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..encoders.ngrams import char_ngrams

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


FIELDS = ("name", "text", "read")


def read_tokens(text: str) -> list[str]:
    """The read field's tokens: each word's character trigrams (accents folded, word ends marked), so a word OCR
    misread by a letter still shares most of its tokens with the word printed on the product."""
    return char_ngrams(text, 3)


TOKENIZERS = {"name": tokenize, "text": tokenize, "read": read_tokens}


class LexicalIndex:
    """BM25 over each field's documents; document n of every field is item ids[n]."""

    def __init__(self, fields: dict, ids: np.ndarray):
        """`fields`: field → a bm25s.BM25, or None when none of its documents has a word (nothing can match)."""
        self.fields = fields
        self.ids = np.asarray(ids, dtype=np.int64)

    @classmethod
    def build(cls, documents: dict[str, list[str]], ids) -> "LexicalIndex":
        """`documents`: field → one text per id."""
        import bm25s

        fields = {}
        for field, texts in documents.items():
            tokens = [TOKENIZERS[field](t) for t in texts]
            fields[field] = None
            if any(tokens):
                fields[field] = bm25s.BM25()
                fields[field].index(tokens, show_progress=False)
        return cls(fields, np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, text: str, k: int, allowed: np.ndarray | None = None,
               field: str = "text") -> tuple[np.ndarray, np.ndarray]:
        """(item ids, BM25 scores) of up to k documents of `field` sharing a word with `text`, best first;
        `allowed`: only these item ids."""
        bm25 = self.fields.get(field)
        tokens = TOKENIZERS[field](text)
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if bm25 is None or not tokens or not any(t in bm25.vocab_dict for t in tokens):
            return empty
        mask = None
        if allowed is not None:
            mask = np.isin(self.ids, allowed).astype(np.float32)
            if not mask.any():
                return empty
        docs, scores = bm25.retrieve([tokens], k=min(k, len(self.ids)), show_progress=False, weight_mask=mask,
                                     n_threads=1)
        docs, scores = docs[0], scores[0]
        keep = scores > 0
        return self.ids[docs[keep]], scores[keep].astype(np.float32)

    def rankings(self, text: str, k: int, allowed: np.ndarray | None = None) -> list[np.ndarray]:
        """Each field's ranking of item ids for `text` (for fusion)."""
        return [self.search(text, k, allowed, field)[0] for field in self.fields]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "ids.npy", self.ids)
        for field, bm25 in self.fields.items():
            (directory / field).mkdir(exist_ok=True)
            if bm25 is not None:
                bm25.save(str(directory / field), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Arrays and JSON only (no pickles): loading an index never runs code."""
        import bm25s

        ids = np.load(directory / "ids.npy", allow_pickle=False)
        fields = {}
        for field in FIELDS:
            path = directory / field
            if not path.is_dir():
                if field == "read":  # saved before pictures were read: nothing to match there
                    fields[field] = None
                    continue
                raise ValueError(f"{directory}: no {field} field")
            indexed = (path / "params.index.json").exists()
            fields[field] = bm25s.BM25.load(str(path), allow_pickle=False) if indexed else None
        return cls(fields, ids)

