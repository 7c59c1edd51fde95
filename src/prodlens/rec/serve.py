"""Serving recommendations: a trained run (model + the item catalogue and user histories it was trained with).

Top-k retrieval scores every item for a batch of users in one matrix product and selects the k best with
torch.topk (partial selection, no sort of the whole catalogue), seen items masked first: exact by construction.
bench/rec_train.py measures it against sorting every score and against FAISS's exact inner-product index at 100k
and 1M items: on CPU the matrix product + top-k is the fastest of the three.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import atomic
from ..errors import ProdlensError
from .data import RecData, load_rec_data
from .models import pad_left
from .train import load_rec_checkpoint


def save_run_data(data: RecData, run_dir: str | Path) -> None:
    """Item titles and full user histories beside the checkpoint, so a run serves on its own."""
    run_dir = Path(run_dir)
    items = pa.table({"item_id": data.item_ids, "text": data.item_texts})
    histories = pa.table({"user_id": data.user_ids,
                          "items": pa.array([[data.item_ids[i] for i in s] for s in data.sequences],
                                            pa.list_(pa.string()))})
    for name, table in (("items.parquet", items), ("histories.parquet", histories)):
        with atomic.atomic_path(run_dir / name) as tmp:
            pq.write_table(table, tmp)


class Recommender:
    def __init__(self, checkpoint: str | Path, item_ids: list[str], texts: list[str], histories: dict[str, list[str]]):
        self.model, self.cfg, trained_items = load_rec_checkpoint(checkpoint)
        if trained_items != item_ids:
            raise ProdlensError(f"{checkpoint} was trained on another item catalogue than the one given")
        self.item_ids = item_ids
        self.index_of = {item: i for i, item in enumerate(item_ids)}
        self.titles = {item: text.split(". ")[0] for item, text in zip(item_ids, texts)}
        self.histories = histories
        self._lock = threading.Lock()
        with torch.inference_mode():
            self.items = self.model.item_vectors() * self.model.logit_scale()

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "Recommender":
        run_dir = Path(run_dir)
        if not (run_dir / "items.parquet").exists():
            raise ProdlensError(f"{run_dir} has no items.parquet: give --interactions and --items")
        items = pq.read_table(run_dir / "items.parquet").to_pydict()
        hist = pq.read_table(run_dir / "histories.parquet").to_pydict()
        return cls(run_dir, items["item_id"], items["text"], dict(zip(hist["user_id"], hist["items"])))

    @classmethod
    def from_files(cls, checkpoint: str | Path, interactions: str | Path | None, items: str | Path | None,
                   item_map: str | Path | None = None) -> "Recommender":
        if interactions is None or items is None:
            return cls.from_run(checkpoint)
        data = load_rec_data(interactions, items, item_map)
        histories = {u: [data.item_ids[i] for i in s] for u, s in zip(data.user_ids, data.sequences)}
        return cls(checkpoint, data.item_ids, data.item_texts, histories)

    def history_of(self, user: str) -> list[str]:
        if user not in self.histories:
            raise KeyError(f"unknown user {user!r} (not in the interactions the model was trained with)")
        return self.histories[user]

    def recommend_user(self, user: str, k: int = 10) -> list[dict]:
        return self.recommend_history(self.history_of(user), k)

    def recommend_history(self, history: list[str], k: int = 10) -> list[dict]:
        """Top-k items after `history` (item ids, oldest first); unknown ids are ignored, seen items excluded."""
        known = [self.index_of[i] for i in history if i in self.index_of]
        if not known:
            raise ProdlensError("none of the history's items is in the catalogue")
        return self.recommend_many([known], k)[0]

    def recommend_many(self, histories: list[list[int]], k: int = 10) -> list[list[dict]]:
        """Top-k for a batch of histories given as item indices (non-empty, oldest first)."""
        with self._lock, torch.inference_mode():
            users = self.model.states(pad_left(histories, self.cfg.max_len, len(self.item_ids)))[:, -1]
            hits = top_k_unseen(self.items, users, histories, k)
        return [[{"item_id": self.item_ids[i], "score": score, "title": self.titles[self.item_ids[i]]}
                 for i, score in row] for row in hits]


def top_k_unseen(items: torch.Tensor, users: torch.Tensor, histories: list[list[int]], k: int,
                 chunk: int = 256) -> list[list[tuple[int, float]]]:
    """Per user, the k best (item index, score) pairs among the items not in its history (scores = users @ items.T),
    `chunk` users at a time so the score matrix stays small for any catalogue size."""
    out = []
    k = min(k, items.shape[0])
    with torch.inference_mode():
        for start in range(0, len(users), chunk):
            scores = users[start:start + chunk] @ items.T
            for r, history in enumerate(histories[start:start + chunk]):
                if history:
                    scores[r, torch.as_tensor(history)] = -torch.inf
            top = scores.topk(k, dim=1)
            for values, ids in zip(top.values.tolist(), top.indices.tolist()):
                out.append([(i, v) for i, v in zip(ids, values) if v != -float("inf")])
    return out
