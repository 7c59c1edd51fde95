"""The non-LLM fallback, named as such: pick the transcript sentences closest to the product vocabulary.

Sentences are scored with the text encoder against the title (when there is one) and against a few product-
description prototypes, minus their similarity to stream chatter prototypes (greetings, follow requests, prices).
The best ones, in their original order, are the summary; sizes and colours found in them become attributes.
Every output string is copied from the input, so it is grounded by construction.
"""
from __future__ import annotations

import re

import numpy as np

from .facts import ProductFacts

PRODUCT_PROTOTYPES = [
    "this product is made of", "the brand of this product", "it comes in a bottle of 500 ml",
    "the flavour and ingredients of this food", "this cream is for dry skin", "the colour and size of the item",
]
CHATTER_PROTOTYPES = [
    "hello everyone welcome back to my live stream", "please like and follow and subscribe",
    "the link is below, buy now", "thank you for watching, see you tomorrow", "what did you eat today",
]
SIZE = re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:ml|millilitres?|milliliters?|l|litres?|liters?|g|grams?|kg|kilos?|oz|"
                  r"pack|pieces?|tablets?|capsules?)\b", re.IGNORECASE)
COLOURS = {"red", "green", "blue", "yellow", "orange", "purple", "black", "white", "pink", "brown", "grey", "gray",
           "gold", "silver", "beige", "teal"}


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?。！？])\s+|\s*\n+\s*", text)
    out = []
    for p in parts:
        words = p.split()
        # ASR often has no punctuation: cut long runs into ~20-word windows
        for i in range(0, len(words), 20):
            chunk = " ".join(words[i:i + 20]).strip()
            if chunk:
                out.append(chunk)
    return out


class ExtractiveSummarizer:
    name = "extractive"

    def __init__(self, text_encoder, max_sentences: int = 2):
        self.encoder = text_encoder
        self.max_sentences = max_sentences
        self._protos = None

    def _prototypes(self):
        if self._protos is None:
            self._protos = (self.encoder.encode(PRODUCT_PROTOTYPES), self.encoder.encode(CHATTER_PROTOTYPES))
        return self._protos

    def summarize(self, transcript: str, title: str = "") -> ProductFacts:
        sentences = split_sentences(transcript)
        if not sentences:
            return ProductFacts(product_name=title[:120])
        product, chatter = self._prototypes()
        vecs = self.encoder.encode(sentences)
        score = (vecs @ product.T).max(axis=1) - (vecs @ chatter.T).max(axis=1)
        if title:
            score = score + vecs @ self.encoder.encode([title])[0]
        keep = sorted(np.argsort(-score)[: self.max_sentences].tolist())
        chosen = [sentences[i] for i in keep if score[i] > -0.05]
        text = " ".join(chosen)
        attributes = [m.group(0) for m in SIZE.finditer(text)]
        attributes += [w for w in re.findall(r"\w+", text.lower()) if w in COLOURS]
        return ProductFacts(product_name=title[:120], attributes=attributes[:12], summary=text[:600])
