"""Grounding: every fact a summariser outputs must be supported by its input (the ASR text and the title, after
`injection.strip_injections` took the spoken instructions and what they asserted out of it).

A value is grounded when it occurs in the input (after normalisation), or when each of its content words matches an
input word exactly or closely (ASR misspells product names, so near-matches count). Chinese has no spaces: a CJK
value is grounded when it is a substring of the input or most of its character pairs are. Values that read as
instructions, or that contain a term an instruction asserted, are dropped whatever the input says.
"""
from __future__ import annotations

import difflib
import re

from .facts import ProductFacts
from .injection import CJK_CHARS, is_instruction, mentions_blocked

STOPWORDS = set("""a an the and or of for to in on with by at from this that these those is are was were be been it its
i you we they he she my your our their me us them so very really just like here there now today guys everyone
hello hi hey okay ok yes no not do does did have has had will would can could should about as if but also than then
""".split())
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
CLOSE_MATCH = 0.8
CJK_PAIR_SUPPORT = 0.8


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


class Grounder:
    def __init__(self, source: str, blocked: set[str] | frozenset[str] = frozenset()):
        self.source_norm = normalise(source)
        self.source_words = set(_WORD.findall(source.lower()))
        self.source_cjk = "".join(_CJK_RUN.findall(source))
        self.blocked = set(blocked)

    def word_ok(self, word: str) -> bool:
        if word in self.source_words:
            return True
        if _CJK_RUN.search(word):
            return self.cjk_ok(word)
        if len(word) < 4 or word.isdigit():
            return False
        return any(difflib.SequenceMatcher(None, word, s).ratio() >= CLOSE_MATCH for s in self.source_words
                   if abs(len(s) - len(word)) <= 3)

    def cjk_ok(self, word: str) -> bool:
        """A CJK run is supported when it occurs in the input, or most of its character pairs do."""
        runs = _CJK_RUN.findall(word)
        if all(r in self.source_cjk for r in runs):
            return True
        pairs = [r[i:i + 2] for r in runs for i in range(len(r) - 1)]
        return bool(pairs) and sum(p in self.source_cjk for p in pairs) / len(pairs) >= CJK_PAIR_SUPPORT

    def grounded(self, value: str) -> bool:
        norm = normalise(value)
        if not norm or is_instruction(value) or mentions_blocked(value, self.blocked):
            return False
        if f" {norm} " in f" {self.source_norm} ":
            return True
        words = content_words(value)
        return bool(words) and all(self.word_ok(w) for w in words)

    def sentence_support(self, sentence: str) -> float:
        if is_instruction(sentence) or mentions_blocked(sentence, self.blocked):
            return 0.0
        words = content_words(sentence)
        return sum(self.word_ok(w) for w in words) / len(words) if words else 0.0


def ground_facts(facts: ProductFacts, source: str, summary_support: float = 0.75,
                 blocked: set[str] | frozenset[str] = frozenset()) -> tuple[ProductFacts, list[str]]:
    """Drop every field value the source does not support (or that names a `blocked` term); returns the grounded
    facts and what was dropped."""
    g = Grounder(source, blocked)
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
    for sentence in re.split(r"(?<=[.!?])\s+|(?<=[。！？])", facts.summary):
        if sentence.strip():
            if g.sentence_support(sentence) >= summary_support:
                kept_sentences.append(sentence.strip())
            else:
                dropped.append(f"summary sentence={sentence.strip()!r}")
    fields["summary"] = " ".join(kept_sentences)
    return ProductFacts(**fields), dropped
