"""Full-ranking evaluation: every item is scored for every test case; Recall@K and NDCG@K of the one target.

Items already in the user's history are not recommended again (their scores are masked), except the target itself.
"""
from __future__ import annotations

import numpy as np
import torch

from ..progress import progress_bar
from .models import pad_left

KS = (10, 20)


def metric_names(ks=KS) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in ("R", "N")]


@torch.inference_mode()
def target_ranks(model, cases: list[tuple[int, list[int], int]], n_items: int, max_len: int = 50,
                 batch_size: int = 512, popularity: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
    """0-based rank of each case's target among all items (ties count against the target)."""
    ranks = np.zeros(len(cases), np.int64)
    by_length = np.argsort([len(h) for _, h, _ in cases], kind="stable")  # batches of similar length: less padding
    original = cases
    cases = [original[i] for i in by_length]
    if model is not None:
        model.eval()
        items = model.item_vectors()
        scale = model.logit_scale()
    with progress_bar(len(cases), "ranking all items", enabled=progress) as advance:
        for start in range(0, len(cases), batch_size):
            part = cases[start:start + batch_size]
            if model is None:  # popularity
                scores = torch.as_tensor(np.broadcast_to(popularity.astype(np.float32), (len(part), n_items)).copy())
            else:
                seqs = pad_left([h for _, h, _ in part], max_len, n_items)
                users = model.states(seqs)[:, -1]
                scores = scale * users @ items.T
            targets = torch.tensor([t for _, _, t in part])
            rows = torch.arange(len(part))
            target_scores = scores[rows, targets].clone()
            for r, (_, history, _) in enumerate(part):
                if history:
                    scores[r, torch.tensor(history[-500:])] = -torch.inf
            scores[rows, targets] = target_scores
            above = (scores > target_scores[:, None]).sum(1)
            tied = (scores == target_scores[:, None]).sum(1) - 1  # other items scored exactly as the target
            ranks[by_length[start:start + len(part)]] = (above + tied).numpy()
            advance(len(part))
    return ranks


def metrics_from_ranks(ranks: np.ndarray, ks=KS) -> dict:
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"R@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"N@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2), 0.0).mean()) if len(ranks) else 0.0
    out["n"] = int(len(ranks))
    return out
