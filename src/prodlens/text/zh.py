"""Chinese words for the evidence of product identity, from jieba's dictionary and part-of-speech tagger.

Unpunctuated Chinese ASR is one run of characters; cutting it at function characters leaves runs such as
"香奈儿香水一包一包" in which a rival's name and the host's chatter are one "word". jieba separates them (香奈儿/nr
香水/n 一包/m 一包/m), and its tags tell a proper noun — a brand, a maker — from a common one, which is what marks a
mention as *another named product* in a one-product pitch.
"""
from __future__ import annotations

import functools
import re

from .injection import has_cjk

NOUN_TAGS = {"n", "nr", "nrt", "nrfg", "ns", "nt", "nz", "eng", "vn"}
PROPER_TAGS = {"nr", "nrt", "nrfg", "nt", "nz", "eng"}


@functools.lru_cache(maxsize=1)
def _tagger():
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


@functools.lru_cache(maxsize=4096)
def tagged(text: str) -> tuple[tuple[str, str], ...]:
    """(word, part-of-speech tag) pairs of a Chinese text."""
    return tuple((p.word, p.flag) for p in _tagger().cut(re.sub(r"\s+", "", text)))


def content_words(run: str) -> set[str]:
    """The nouns of two or more characters in a run: what two mentions of one product share."""
    return {w for w, tag in tagged(run) if tag in NOUN_TAGS and len(w) >= 2 and has_cjk(w)}


def proper_nouns(run: str) -> set[str]:
    """Names in a run (people's, organisations', brands' as jieba tags them)."""
    return {w for w, tag in tagged(run) if tag in PROPER_TAGS and len(w) >= 2}


_LEAD_TAGS = {"m", "a", "b", "ag"}
_BREAK_TAGS = ("v", "d", "p", "u", "y", "c", "e", "o", "m", "q", "t", "ad", "zg")  # prefixes: "u" covers ul, uj


def name_span(run: str) -> str:
    """The product name in a run: from its first noun (or the numeral or adjective right before it: 三只松鼠, 完美日记)
    to where the words stop describing a thing (a verb, an adverb, a particle, a quantity after the name), trimmed
    back to its last noun. "三只松鼠每日坚果其实" → "三只松鼠每日坚果", "其实叫雀巢咖啡下单就送" → "雀巢咖啡下单",
    "香奈儿香水一包一包" → "香奈儿香水". A run without a noun stays as it is."""
    words = tagged(run)
    nouns = [i for i, (_, tag) in enumerate(words) if tag in NOUN_TAGS]
    if not nouns:
        return run
    start = nouns[0]
    if start > 0 and words[start - 1][1] in _LEAD_TAGS:
        start -= 1
    end = nouns[0] + 1
    for i in range(nouns[0] + 1, len(words)):
        tag = words[i][1]
        if tag in NOUN_TAGS:
            end = i + 1
        elif tag.startswith(_BREAK_TAGS):
            break
    return "".join(w for w, _ in words[start:end])


_OPENS = {"r", "t", "tg", "l", "c"}  # a pronoun or demonstrative (这款, 它, 我家), a time (今天), a set phrase (说到底), a conjunction
_CLOSES = {"y", "e"}  # a modal particle or interjection ends what was said (啊, 哦, 吧)
_DISTRIBUTIVE = ("每", "各")  # 每日, 每天: tagged as pronouns, but part of a name (三只松鼠每日坚果)
_ADDRESS = {"大家", "你们", "家人们", "宝宝们", "姐妹们", "朋友们", "兄弟们"}  # the host turns to the viewers


def windows(text: str, min_chars: int = 4) -> list[str]:
    """Unpunctuated Chinese speech cut into clause-sized windows where speech turns: before a pronoun or
    demonstrative, a time, a set phrase or a conjunction, and after a modal particle. A window shorter than
    `min_chars` joins the next one ("宝宝们" + "晚上好")."""
    out, current = [], ""
    for word, tag in tagged(text):
        opens = (tag in _OPENS and not word.startswith(_DISTRIBUTIVE)) or word in _ADDRESS
        if current and opens and len(current) >= min_chars:
            out.append(current)
            current = ""
        current += word
        if tag in _CLOSES and len(current) >= min_chars:
            out.append(current)
            current = ""
    if current:
        if out and len(current) < min_chars:
            out[-1] += current
        else:
            out.append(current)
    return out
