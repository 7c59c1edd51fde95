"""One-shot product classification (as COPE evaluates it): within one domain, one labelled sample per product is the
support set; every other sample of that domain is classified by its nearest support sample. Averaged over episodes
with different random supports."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..embed.store import Embeddings


def one_shot_accuracy(emb: Embeddings, domain: str, episodes: int = 5, seed: int = 0) -> dict | None:
    sub = emb.domain(domain)
    by_product: dict[str, list[int]] = defaultdict(list)
    for i, pid in enumerate(sub.product_ids):
        by_product[pid].append(i)
    # Products with a single sample have no query; they still compete as (distractor) classes.
    if sum(len(v) - 1 for v in by_product.values()) == 0:
        return None
    rng = np.random.default_rng(seed)
    products = sorted(by_product)
    accuracies = []
    n_queries = 0
    for _ in range(episodes):
        support = np.array([rng.choice(by_product[p]) for p in products])
        support_set = set(support.tolist())
        queries = np.array([i for i in range(len(sub)) if i not in support_set])
        sims = sub.vectors[queries] @ sub.vectors[support].T
        predicted = np.array(products, dtype=object)[sims.argmax(axis=1)]
        truth = np.array([sub.product_ids[i] for i in queries], dtype=object)
        accuracies.append(float((predicted == truth).mean()))
        n_queries = len(queries)
    return {"accuracy": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "episodes": episodes,
            "n_classes": len(products), "n_queries": n_queries}
