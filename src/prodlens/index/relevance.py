"""One relevance score per hit, the same quantity for every kind of query: the probability that the hit is the
product the query is after, from a logistic model over the hit's retrieval signals.

The signals of a candidate, for each query vector `v` (the query; `rw`, its rewriting into catalogue words) and each
lexical text: `v_cos` (cosine with the hit's vector), `v_lead` (its cosine minus the best cosine of any other
product: positive for the leader, by its margin over the runner-up — how sure the ranking is; negative for the rest,
by how far behind they are), and for every BM25 field `f` of a text `t`, `t_f_rr` (1 / (1 + rank), 0 when the field does
not rank it) — so the logistic model is also the fusion of the rankings, with weights fitted on labelled queries
instead of reciprocal rank fusion's equal ones. A photo's model sees only its cosine signals; a text query's sees all.

Fitted per query kind (`text`, `image`, `video`, `sample`) by `fit` on labelled queries (bench/fit_relevance.py does
it on Grocery train photos and a generated query set) and stored as JSON (arrays of numbers only: loading one never
runs code). An index uses the model stored in its record, else the packaged one; `calibrated` says whether that one
was fitted for the index's own embedding model (otherwise its scores still rank, but are not probabilities).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

PACKAGED = "relevance.json"
KINDS = ("text", "image", "video", "sample")
FALLBACK = {"video": "image", "sample": "image", "text+rewrite": "text"}  # a kind without its own model borrows this one's


@dataclass
class KindModel:
    features: list[str]
    coef: list[float]
    intercept: float

    def logits(self, signals: dict[str, np.ndarray], n: int) -> np.ndarray:
        z = np.full(n, self.intercept, np.float64)
        for name, w in zip(self.features, self.coef):
            if name in signals:
                z += w * np.asarray(signals[name], np.float64)
        return z


@dataclass
class RelevanceModel:
    kinds: dict[str, KindModel]
    model_id: str = ""  # the embedding model it was fitted for
    fitted_on: str = ""
    metrics: dict = field(default_factory=dict)

    def score(self, kind: str, signals: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Relevance in [0, 1] of n candidates. A photo or clip with words (`image+text`, `video+text`: typed
        text, a clip's speech) has no model of its own unless one is fitted: its logit is its picture's model's plus
        the word evidence as the BM25-only text model weighs it (`text:lexical`, less its intercept)."""
        if kind not in self.kinds and kind.endswith("+text") and "text:lexical" in self.kinds:
            lexical = self.kinds["text:lexical"]
            z = self._logits(kind[:-len("+text")], signals, n) + lexical.logits(signals, n) - lexical.intercept
            return 1.0 / (1.0 + np.exp(-z))
        model = self._model(kind)
        if model is None:
            return np.clip(signals.get("q_cos", np.zeros(n)), 0.0, 1.0)
        return 1.0 / (1.0 + np.exp(-model.logits(signals, n)))

    def _model(self, kind: str) -> KindModel | None:
        return self.kinds.get(kind) or self.kinds.get(FALLBACK.get(kind, "")) or self.kinds.get("image")

    def _logits(self, kind: str, signals: dict[str, np.ndarray], n: int) -> np.ndarray:
        model = self._model(kind)
        return model.logits(signals, n) if model is not None else np.zeros(n)

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "fitted_on": self.fitted_on, "metrics": self.metrics,
                "kinds": {k: {"features": m.features, "coef": [round(c, 6) for c in m.coef],
                              "intercept": round(m.intercept, 6)} for k, m in self.kinds.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "RelevanceModel":
        kinds = {}
        for kind, m in data["kinds"].items():
            coef = [float(c) for c in m["coef"]]
            if len(coef) != len(m["features"]):
                raise ValueError(f"relevance model {kind}: {len(coef)} weights for {len(m['features'])} features")
            kinds[kind] = KindModel([str(f) for f in m["features"]], coef, float(m["intercept"]))
        return cls(kinds, str(data.get("model_id", "")), str(data.get("fitted_on", "")), dict(data.get("metrics", {})))

    @classmethod
    def packaged(cls) -> "RelevanceModel":
        return cls.from_dict(json.loads(resources.files("prodlens.index").joinpath(PACKAGED).read_text()))


def fit(examples: dict[str, list[tuple[dict[str, np.ndarray], np.ndarray]]], features: dict[str, list[str]],
        model_id: str = "", fitted_on: str = "", c: float = 100.0) -> RelevanceModel:
    """examples: kind → [(signals of a query's candidates, labels: 1 where the candidate is the query's product)];
    features: kind → the signals its model uses. L2-regularised logistic regression (sklearn), every candidate of a
    query one row."""
    from sklearn.linear_model import LogisticRegression

    kinds = {}
    for kind, rows in examples.items():
        names = features[kind]
        x = np.concatenate([np.stack([np.asarray(s.get(f, np.zeros(len(y))), np.float64) for f in names], 1)
                            for s, y in rows])
        y = np.concatenate([np.asarray(y) for _, y in rows])
        lr = LogisticRegression(C=c, max_iter=1000).fit(x, y)
        kinds[kind] = KindModel(list(names), [float(w) for w in lr.coef_[0]], float(lr.intercept_[0]))
    return RelevanceModel(kinds, model_id, fitted_on)
