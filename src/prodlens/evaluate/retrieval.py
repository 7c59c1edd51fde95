"""Cross-domain retrieval metrics: for queries of one domain, rank a gallery of another by cosine similarity.

A gallery item is relevant when it shows the same product. R@K is the share of queries with a relevant item in the
top K (as COPE reports it); mAP averages each query's average precision over the full ranking.
Queries whose product has no item in the gallery are not scored (they are counted in `n_skipped`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..catalog.schema import DOMAIN_LETTER
from ..embed.store import Embeddings

DEFAULT_KS = (1, 5, 10)


@dataclass
class RetrievalResult:
    query_domain: str
    gallery_domain: str
    metrics: dict[str, float]
    n_queries: int
    n_gallery: int
    n_skipped: int
    recall_curve: list[float] = field(default_factory=list)  # R@1..R@max_k
    top_indices: np.ndarray | None = None  # (n_queries, top_n) gallery rows, for the example grid
    query_rows: np.ndarray | None = None  # rows of the scored queries in the query embeddings
    hits_at_1: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.query_domain}2{self.gallery_domain}"

    @property
    def short_name(self) -> str:
        return f"{DOMAIN_LETTER[self.query_domain]}2{DOMAIN_LETTER[self.gallery_domain]}"


def retrieval_metrics(queries: np.ndarray, query_labels: list[str], gallery: np.ndarray, gallery_labels: list[str],
                      ks=DEFAULT_KS, curve_max_k: int = 20, top_n: int = 5, block: int = 1024) -> dict:
    """R@K, mAP (and a recall curve) of `queries` against `gallery`; rows must be L2-normalised."""
    g_labels = np.asarray(gallery_labels, dtype=object)
    uniq = {label: i for i, label in enumerate(sorted(set(gallery_labels) | set(query_labels)))}
    g_ids = np.array([uniq[x] for x in g_labels], dtype=np.int64)
    q_ids = np.array([uniq[x] for x in query_labels], dtype=np.int64)
    n_rel_per_label = np.bincount(g_ids, minlength=len(uniq))
    scored = np.flatnonzero(n_rel_per_label[q_ids] > 0)
    max_k = max(max(ks), curve_max_k)
    hit_rank = np.full(len(scored), np.iinfo(np.int64).max, dtype=np.int64)  # rank (0-based) of the first hit
    ap = np.zeros(len(scored), dtype=np.float64)
    top = np.zeros((len(scored), min(top_n, len(g_ids))), dtype=np.int64)
    for start in range(0, len(scored), block):
        rows = scored[start:start + block]
        sims = queries[rows] @ gallery.T
        order = np.argsort(-sims, axis=1, kind="stable")
        relevant = g_ids[order] == q_ids[rows][:, None]
        top[start:start + len(rows)] = order[:, :top.shape[1]]
        first = np.where(relevant.any(axis=1), relevant.argmax(axis=1), np.iinfo(np.int64).max)
        hit_rank[start:start + len(rows)] = first
        cum = np.cumsum(relevant, axis=1)
        precision_at_hits = np.where(relevant, cum / np.arange(1, relevant.shape[1] + 1), 0.0)
        ap[start:start + len(rows)] = precision_at_hits.sum(axis=1) / relevant.sum(axis=1)
    n = max(len(scored), 1)
    metrics = {f"R@{k}": float((hit_rank < k).sum() / n) for k in ks}
    metrics["mAP"] = float(ap.mean()) if len(scored) else 0.0
    curve = [float((hit_rank < k).sum() / n) for k in range(1, max_k + 1)]
    return {"metrics": metrics, "n_scored": len(scored), "n_skipped": len(query_labels) - len(scored),
            "curve": curve, "top": top, "rows": scored, "hits_at_1": hit_rank == 0}


def evaluate_direction(emb: Embeddings, query_domain: str, gallery_domain: str, ks=DEFAULT_KS) -> RetrievalResult:
    q = emb.domain(query_domain)
    g = emb.domain(gallery_domain)
    out = retrieval_metrics(q.vectors, q.product_ids, g.vectors, g.product_ids, ks=ks)
    return RetrievalResult(query_domain, gallery_domain, out["metrics"], out["n_scored"], len(g), out["n_skipped"],
                           out["curve"], out["top"], out["rows"], out["hits_at_1"])


def all_directions(domains: list[str]) -> list[tuple[str, str]]:
    """Every ordered pair of distinct domains, in ROPE's order: P2V, V2P, P2L, L2P, V2L, L2V."""
    order = [("page", "video"), ("video", "page"), ("page", "live"), ("live", "page"), ("video", "live"),
             ("live", "video")]
    return [(a, b) for a, b in order if a in domains and b in domains]
