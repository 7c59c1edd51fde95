"""Word and character error rates of transcripts against references (WER for spaced languages, CER for Chinese)."""
from __future__ import annotations

import re
import unicodedata

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _UNITS[n % 10])
    return str(n)


def normalise_words(text: str) -> list[str]:
    """Lower case, punctuation out, "Mr." as "mister", small numbers as words (Whisper writes "10", references
    "ten")."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\bmr\.?(?=\s)", "mister", text)
    text = re.sub(r"\bmrs\.?(?=\s)", "missus", text)
    text = re.sub(r"\d+", lambda m: f" {_number_words(int(m.group()))} ", text)
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return text.split()


def normalise_chars(text: str) -> list[str]:
    """The characters of a Chinese text, punctuation and spaces out."""
    text = unicodedata.normalize("NFKC", text)
    return [c for c in text if unicodedata.category(c)[0] in "LN"]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def error_rate(pairs: list[tuple[list[str], list[str]]]) -> float:
    """Corpus error rate: edits over all reference tokens (not a mean of per-utterance rates)."""
    tokens = sum(len(r) for r, _ in pairs)
    return sum(edit_distance(r, h) for r, h in pairs) / max(tokens, 1)
