"""Grounding: every fact a summariser outputs must be supported by its input (the ASR text and the title).

A value is grounded when it occurs in the input (after normalisation), or when each of its content words matches an
input word exactly or closely (ASR misspells product names, so near-matches count). Ungrounded values are dropped.
Together with a prompt that presents the transcript strictly as quoted data, this is what keeps a speaker from
steering the output: an instruction in the speech can at most pick facts that were actually said.
"""
from __future__ import annotations

import difflib
import re

from .facts import ProductFacts

STOPWORDS = set("""a an the and or of for to in on with by at from this that these those is are was were be been it its
i you we they he she my your our their me us them so very really just like here there now today guys everyone
hello hi hey okay ok yes no not do does did have has had will would can could should about as if but also than then
""".split())
_WORD = re.compile(r"\w+", re.UNICODE)
CLOSE_MATCH = 0.8
# Speech that addresses the model rather than the viewer. Even when said (so "grounded"), it is not a product fact.
INSTRUCTION_LIKE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|above|previous|prior|rules|prompt)\b"
    r"|\b(system prompt|you are now|act as|pretend (to be|you)|new instructions?|jailbreak)\b"
    r"|\b(say|write|output|respond|reply|answer)\b.{0,20}\b(that|with)\b.{0,60}\b(free|bitcoin|scam)\b",
    re.IGNORECASE)


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


class Grounder:
    def __init__(self, source: str):
        self.source_norm = normalise(source)
        self.source_words = set(_WORD.findall(source.lower()))

    def word_ok(self, word: str) -> bool:
        if word in self.source_words:
            return True
        if len(word) < 4 or word.isdigit():
            return False
        return any(difflib.SequenceMatcher(None, word, s).ratio() >= CLOSE_MATCH for s in self.source_words
                   if abs(len(s) - len(word)) <= 3)

    def grounded(self, value: str) -> bool:
        norm = normalise(value)
        if not norm or INSTRUCTION_LIKE.search(value):
            return False
        if f" {norm} " in f" {self.source_norm} ":
            return True
        words = content_words(value)
        return bool(words) and all(self.word_ok(w) for w in words)

    def sentence_support(self, sentence: str) -> float:
        if INSTRUCTION_LIKE.search(sentence):
            return 0.0
        words = content_words(sentence)
        return sum(self.word_ok(w) for w in words) / len(words) if words else 0.0


def ground_facts(facts: ProductFacts, source: str, summary_support: float = 0.75) -> tuple[ProductFacts, list[str]]:
    """Drop every field value the source does not support; returns the grounded facts and what was dropped."""
    g = Grounder(source)
    dropped: list[str] = []
    fields = {}
    for key in ("product_name", "brand", "category"):
        value = getattr(facts, key)
        if value and not g.grounded(value):
            dropped.append(f"{key}={value!r}")
            value = ""
        fields[key] = value
    fields["attributes"] = []
    for a in facts.attributes:
        (fields["attributes"].append(a) if g.grounded(a) else dropped.append(f"attribute={a!r}"))
    kept_sentences = []
    for sentence in re.split(r"(?<=[.!?。！？])\s+", facts.summary):
        if sentence.strip():
            if g.sentence_support(sentence) >= summary_support:
                kept_sentences.append(sentence.strip())
            else:
                dropped.append(f"summary sentence={sentence.strip()!r}")
    fields["summary"] = " ".join(kept_sentences)
    return ProductFacts(**fields), dropped
