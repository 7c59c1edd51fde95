"""Evaluate embeddings: retrieval in every direction the catalogue has, plus one-shot classification per domain."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..embed.store import Embeddings
from ..errors import BadRecords
from .classification import one_shot_accuracy
from .retrieval import DEFAULT_KS, RetrievalResult, all_directions, evaluate_direction


@dataclass
class EvalResult:
    model: str
    catalog: str
    split: str | None
    directions: list[RetrievalResult]
    one_shot: dict[str, dict]
    n_samples: int
    bad: BadRecords = field(default_factory=BadRecords)
    variants: dict[str, "EvalResult"] = field(default_factory=dict)  # other embedding variants, same samples
    notes: list[str] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        return sum(r.n_queries for r in self.directions)

    def metrics(self) -> dict[str, dict[str, float]]:
        return {r.name: r.metrics for r in self.directions}

    def to_json(self) -> dict:
        out = {
            "metrics": self.metrics(),
            "model": self.model,
            "n_queries": self.n_queries,
            "n_queries_by_direction": {r.name: r.n_queries for r in self.directions},
            "gallery_size": {r.name: r.n_gallery for r in self.directions},
            "one_shot": self.one_shot,
            "catalog": self.catalog,
            "split": self.split,
            "n_samples": self.n_samples,
            "skipped_records": self.bad.as_dicts(),
        }
        if self.variants:
            out["variants"] = {name: {"model": v.model, "metrics": v.metrics(), "one_shot": v.one_shot}
                               for name, v in self.variants.items()}
        if self.notes:
            out["notes"] = self.notes
        return out


def evaluate_embeddings(emb: Embeddings, split: str | None = None, ks=DEFAULT_KS, episodes: int = 5,
                        directions: list[tuple[str, str]] | None = None) -> EvalResult:
    domains = sorted(set(emb.domains))
    pairs = directions or all_directions(domains)
    results = [evaluate_direction(emb, q, g, ks) for q, g in pairs]
    one_shot = {}
    for domain in domains:
        acc = one_shot_accuracy(emb, domain, episodes=episodes)
        if acc is not None:
            one_shot[domain] = acc
    return EvalResult(emb.meta.get("model", "unknown"), emb.meta.get("catalog", ""), split, results, one_shot,
                      len(emb), emb.bad)
