"""Speech anchored in trusted evidence: each clause of a clip's speech is kept by how well it agrees with what the
seller cannot change by talking — the listing title and the text printed in the frames (OCR) — with a gate *fitted
on data*, not set by hand.

Per clause (after the injection defence has cut what speaks to a machine), the gate reads `FEATURES`: its agreement
(text-encoder cosine) with the title and with the frames' text, whether each exists, its agreement with the rest of
the speech, how product-like it is (goods minus stream chatter), the detector's probability that it speaks to a
machine, whether it names a product the evidence rejected, the evidence's supported winner, or a brand printed in
the frames. A logistic regression over them predicts whether the clause points to the clip's own product (its
nearest catalogue page is the clip's); it is fitted on clips whose speech was attacked as augmentation (attack
clauses point elsewhere), by `bench/fit_speech_anchor.py`. The clauses it keeps are the clip's speech text
(`EmbedConfig(speech="anchored")`): a claim, keyword list or correction naming another product agrees with neither
the title nor the pack, and stays out of the vector; so does chatter.

The model is a small JSON file (loading runs no code); its sha256 is part of the cache key of anchored speech.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..encoders.base import l2_normalize
from ..errors import ProdlensError
from .injection import mentions_blocked

SHIPPED = Path(__file__).with_name("speech_anchor.json")
FORMAT = "prodlens-speech-anchor-1"
FEATURES = ("title_agreement", "has_title", "read_agreement", "has_read", "rest_agreement", "productlike",
            "addressed", "names_rejected", "names_supported_winner", "names_printed_brand")


@dataclass
class SpeechAnchor:
    weights: np.ndarray
    bias: float
    threshold: float = 0.5
    text_encoder: str = "minilm"
    fitted_on: dict = field(default_factory=dict)  # what the gate was fitted on (data, counts), for the record

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(x, np.float32) @ self.weights + self.bias)))

    def keeps(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities(x) >= self.threshold if len(x) else np.zeros(0, bool)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "features": list(FEATURES), "weights": [round(float(w), 6)
                           for w in self.weights], "bias": round(self.bias, 6), "threshold": self.threshold,
                           "text_encoder": self.text_encoder, "fitted_on": self.fitted_on}, indent=1) + "\n"

    @property
    def version(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        write_text(path, self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path = SHIPPED) -> "SpeechAnchor":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ProdlensError(f"speech anchor {path}: cannot be read ({e})") from None
        if data.get("format") != FORMAT or data.get("features") != list(FEATURES):
            raise ProdlensError(f"speech anchor {path}: not a {FORMAT} file with features {', '.join(FEATURES)}")
        return cls(np.asarray(data["weights"], np.float32), float(data["bias"]), float(data["threshold"]),
                   data.get("text_encoder", "minilm"), data.get("fitted_on", {}))


_SHARED: dict[str, SpeechAnchor] = {}


def shipped_anchor() -> SpeechAnchor:
    if "shipped" not in _SHARED:
        _SHARED["shipped"] = SpeechAnchor.load(SHIPPED)
    return _SHARED["shipped"]


def clause_features(scorer, clauses: list[str], addressed: list[float], identity, title: str = "",
                    read: str | None = None) -> np.ndarray:
    """`FEATURES` of each clause (rows), with the evidence's text encoder (`scorer`: an EvidenceScorer) and its
    `identity` of the clip. "names_rejected": the clause names another product (a rival, or a product-like
    candidate the evidence ruled out) and not the winner."""
    if not clauses:
        return np.zeros((0, len(FEATURES)), np.float32)
    from .evidence import _productlike, _productlike_scores

    encoder = scorer.encoder
    vecs = l2_normalize(np.asarray(encoder.encode(clauses), np.float32))
    anchors = l2_normalize(np.asarray(encoder.encode([title or " ", read or " "]), np.float32))
    title_agree = vecs @ anchors[0] if title else np.zeros(len(clauses), np.float32)
    read_agree = vecs @ anchors[1] if read else np.zeros(len(clauses), np.float32)
    # each clause against the sum of the others
    rest = np.sum(vecs * l2_normalize(vecs.sum(axis=0) - vecs), axis=1) if len(clauses) > 1 \
        else np.zeros(1, np.float32)
    goods, chatter = scorer._prototypes()
    productlike = _productlike_scores(vecs, goods, chatter)
    winner = identity.winner
    own = winner.words if winner is not None else set()
    # another product: a rival the evidence named, or a product-like candidate it ruled out
    rejected = set(identity.blocked).union(*(c.words for c in identity.candidates
                                             if not c.eligible and _productlike(c))) - own
    supported = own if winner is not None and (winner.title_support or winner.read_support) else set()
    printed = set().union(*(c.words for c in identity.candidates if c.read_support)) if identity.candidates else set()
    rows = []
    for i, clause in enumerate(clauses):
        rows.append([title_agree[i], float(bool(title)), read_agree[i], float(bool(read)), rest[i], productlike[i],
                     addressed[i] if i < len(addressed) else 0.0,
                     float(mentions_blocked(clause, rejected) and not mentions_blocked(clause, own)),
                     float(bool(supported) and mentions_blocked(clause, supported)),
                     float(bool(printed) and mentions_blocked(clause, printed))])
    return np.asarray(rows, np.float32)
