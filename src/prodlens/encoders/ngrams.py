"""Text read off a product (OCR) as a vector of hashed character trigrams.

What OCR returns from a photo is a few words, often misread by a letter or two ("MELLANMUOLK" for "MELLANMJOLK",
"Arlo" for "Arla"), in the shop's language rather than the catalogue's ("ÄPPLE" beside the title "Apple Juice").
A sentence encoder gives such fragments no stable meaning; their letters do match. Words are lower-cased, accents
folded (ä → a), wrapped in boundary marks and cut into trigrams, each hashed into one of `dim` buckets (feature
hashing, Weinberger et al. 2009); counts are square-rooted (so one word read five times does not drown the rest) and
the vector is L2-normalised. No weights: the vector depends only on the text, so it needs no training and no file.
"""
from __future__ import annotations

import re
import unicodedata
import zlib

import numpy as np

WORD = re.compile(r"[^\W_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case, accents removed (NFKD without combining marks): "ÄPPLE" → "apple"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def char_ngrams(text: str, n: int = 3) -> list[str]:
    """Each word's character n-grams, in order: lower case, accents folded, words of two characters or more,
    wrapped in boundary marks ("ÄPPLE" → #ap app ppl ple le#)."""
    out = []
    for word in WORD.findall(fold(text)):
        if len(word) >= 2:
            marked = f"#{word}#"
            out += [marked[i:i + n] for i in range(len(marked) - n + 1)]
    return out


class CharNgramEncoder:
    def __init__(self, n: int = 3, dim: int = 1024):
        self.n, self.dim = n, dim
        self.name = f"char{n}gram-{dim}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalised; an all-zero row for a text with no word of two or more characters."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for gram in char_ngrams(text, self.n):
                out[row, zlib.crc32(gram.encode()) % self.dim] += 1.0
        np.sqrt(out, out=out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)
