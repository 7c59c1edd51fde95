"""Full-ranking evaluation: every item is scored for every test case; Recall@K and NDCG@K of the one target.

Items already in the user's history are not recommended again (their scores are masked), except the target itself.
"""
from __future__ import annotations

from typing import Callable

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
    """0-based rank of each case's target among all items of a trained model's catalogue (or by `popularity`)."""
    if model is None:
        row = torch.as_tensor(popularity.astype(np.float32))
        return rank_targets(lambda histories: row.expand(len(histories), n_items).clone(), cases, batch_size,
                            progress)
    model.eval()
    items = model.item_vectors() * model.logit_scale()
    return rank_targets(lambda histories: model.states(pad_left(histories, max_len, n_items))[:, -1] @ items.T,
                        cases, batch_size, progress)


@torch.inference_mode()
def rank_targets(score: Callable[[list[list[int]]], torch.Tensor], cases: list[tuple[int, list[int], int]],
                 batch_size: int = 512, progress: bool = False) -> np.ndarray:
    """0-based rank of each case's target; `score(histories)` gives every item's score for a batch of histories.
    Items in the history are masked, except the target; ties count against the target."""
    ranks = np.zeros(len(cases), np.int64)
    by_length = np.argsort([len(h) for _, h, _ in cases], kind="stable")  # batches of similar length: less padding
    ordered = [cases[i] for i in by_length]
    with progress_bar(len(cases), "ranking all items", enabled=progress) as advance:
        for start in range(0, len(ordered), batch_size):
            part = ordered[start:start + batch_size]
            scores = score([h for _, h, _ in part])
            targets = torch.tensor([t for _, _, t in part])
            rows = torch.arange(len(part))
            target_scores = scores[rows, targets].clone()
            for r, (_, history, _) in enumerate(part):
                if len(history):
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
