"""A learned detector of speech addressed to whoever or whatever processes a recording rather than to its viewers,
one clause at a time, English and Chinese.

Features: the clause's sentence embedding (the text encoder's: what it *means*, so "if a machine is listening" and
"to the software summarising this" land near each other), hashed character n-grams (script-independent: Chinese has
no spaces and MiniLM knows little Chinese), and the counts of the injection rules' strong and weak cues — rules are
features here, not the decision. A logistic regression over them is trained on `corpus.build_corpus()` (generated
attacks and host speech in phrasing families); its threshold is chosen by leave-one-family-out predictions on the
training families (benign clauses flagged at most `MAX_BENIGN_FLAGGED`), never on the families it is measured on.

The model is one `.npz` of arrays plus a JSON header (read with `allow_pickle=False`: loading runs no code); its
sha256 is the detector's version, which is part of every summary cache key.

    python -m prodlens.text.detector [--out FILE]    # retrains the shipped model from the generated corpus
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from ..errors import ProdlensError
from .corpus import HELD_OUT_FAMILIES, Clause, build_corpus
from .injection import _STRONG_RE, _WEAK_RE, has_cjk, normalise_speech

SHIPPED = Path(__file__).with_name("injection_detector.npz")
NGRAM_DIM = 4096
MAX_BENIGN_FLAGGED = 0.02
FORMAT = "prodlens-injection-detector-1"


def ngram_features(texts: list[str], dim: int = NGRAM_DIM) -> np.ndarray:
    """Binary hashed n-grams, L2-normalised: Latin words and word pairs, character 3-5-grams inside words (with
    boundaries), CJK character 1-3-grams."""
    out = np.zeros((len(texts), dim), np.float32)
    for row, text in enumerate(texts):
        norm = normalise_speech(text)
        grams: set[str] = set()
        words = re.findall(r"[a-z0-9]+", norm)
        grams.update(f"w:{w}" for w in words)
        grams.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
        for w in words:
            padded = f"<{w}>"
            grams.update(f"c:{padded[i:i + n]}" for n in (3, 4, 5) for i in range(len(padded) - n + 1))
        for run in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+", norm):
            grams.update(f"z:{run[i:i + n]}" for n in (1, 2, 3) for i in range(len(run) - n + 1))
        for g in grams:
            out[row, zlib.crc32(g.encode()) % dim] = 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


def rule_features(texts: list[str]) -> np.ndarray:
    rows = []
    for text in texts:
        norm = normalise_speech(text)
        rows.append([sum(bool(p.search(norm)) for p in _STRONG_RE), sum(bool(p.search(norm)) for p in _WEAK_RE),
                     float(has_cjk(text))])
    return np.asarray(rows, np.float32)


@dataclass
class InjectionDetector:
    """p(addressed to the processor) per clause; `flags` applies the stored threshold."""
    weights: np.ndarray
    bias: float
    threshold: float
    text_encoder: str
    ngram_dim: int
    version: str = ""
    _encoder: object = None

    def features(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from ..encoders import load_text_encoder

            self._encoder = load_text_encoder(self.text_encoder)
        return np.concatenate([self._encoder.encode(list(texts)), ngram_features(texts, self.ngram_dim),
                               rule_features(texts)], axis=1)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        logits = self.features(texts) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def flags(self, texts: list[str]) -> list[bool]:
        return [bool(p >= self.threshold) for p in self.probabilities(texts)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {"format": FORMAT, "bias": self.bias, "threshold": self.threshold,
                  "text_encoder": self.text_encoder, "ngram_dim": self.ngram_dim}
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights.astype(np.float32), header=np.array(json.dumps(header)))
        write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path = SHIPPED) -> "InjectionDetector":
        path = Path(path)
        try:
            data = path.read_bytes()
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                weights = np.asarray(z["weights"], np.float32)
        except (OSError, ValueError, KeyError) as e:
            raise ProdlensError(f"cannot read injection detector {path}: {e}") from None
        if header.get("format") != FORMAT:
            raise ProdlensError(f"{path} is not a {FORMAT} file")
        return cls(weights, float(header["bias"]), float(header["threshold"]), header["text_encoder"],
                   int(header["ngram_dim"]), version=hashlib.sha256(data).hexdigest()[:12])


_SHARED: dict[str, InjectionDetector] = {}


def shipped_detector() -> InjectionDetector:
    """The process's shared instance of the shipped detector."""
    if "shipped" not in _SHARED:
        _SHARED["shipped"] = InjectionDetector.load(SHIPPED)
    return _SHARED["shipped"]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, epochs: int = 300) -> tuple[np.ndarray, float]:
    """Class-balanced L2-regularised logistic regression (full-batch L-BFGS)."""
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    pos = float(yt.mean())
    weight = torch.where(yt > 0, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, weight=weight)
                + l2 * (w * w).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().astype(np.float32), float(b.detach())


def leave_family_out(x: np.ndarray, clauses: list[Clause]) -> np.ndarray:
    """Each clause's probability from a model trained without its family."""
    fams = np.array([c.family for c in clauses])
    y = np.array([c.label for c in clauses])
    probs = np.zeros(len(clauses), np.float32)
    for family in sorted(set(fams)):
        test = fams == family
        w, b = fit_logistic(x[~test], y[~test])
        probs[test] = 1.0 / (1.0 + np.exp(-(x[test] @ w + b)))
    return probs


def choose_threshold(probs: np.ndarray, labels: np.ndarray, max_flagged: float = MAX_BENIGN_FLAGGED) -> float:
    """The lowest threshold that flags at most `max_flagged` of the benign clauses (with a floor of 0.5)."""
    benign = np.sort(probs[labels == 0])[::-1]
    allowed = int(np.floor(max_flagged * len(benign)))
    cut = benign[allowed] if allowed < len(benign) else 0.0
    return float(max(0.5, cut + 1e-4))


def train_detector(clauses: list[Clause], text_encoder: str = "minilm",
                   ngram_dim: int = NGRAM_DIM) -> InjectionDetector:
    """Fit on `clauses`; the threshold comes from leave-one-family-out predictions on the same families."""
    detector = InjectionDetector(np.zeros(0, np.float32), 0.0, 0.5, text_encoder, ngram_dim)
    x = detector.features([c.text for c in clauses])
    y = np.array([c.label for c in clauses])
    detector.threshold = choose_threshold(leave_family_out(x, clauses), y)
    detector.weights, detector.bias = fit_logistic(x, y)
    return detector


def training_clauses(exclude: frozenset[str] = HELD_OUT_FAMILIES) -> list[Clause]:
    return [c for c in build_corpus() if c.family not in exclude]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="retrain the shipped injection detector from the generated corpus")
    ap.add_argument("--out", type=Path, default=SHIPPED)
    args = ap.parse_args()
    clauses = training_clauses()
    detector = train_detector(clauses)
    detector.save(args.out)
    print(f"{len(clauses)} clauses from {len({c.family for c in clauses})} families "
          f"(held out: {', '.join(sorted(HELD_OUT_FAMILIES))}); threshold {detector.threshold:.3f}; "
          f"written {args.out} ({InjectionDetector.load(args.out).version})")


if __name__ == "__main__":
    main()
