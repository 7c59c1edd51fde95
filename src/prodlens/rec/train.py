"""Training LEARN or SASRec on leave-one-out training sequences, with validation, checkpoints and resume.

LEARN's loss is the dense all-action in-batch softmax: at every history position the user state predicts the next
item, against every other next item in the batch (deduplicated, so the same item is never its own negative) plus
`extra_negatives` random catalogue items; logits are cosines × `scale`. An optional final stage uses a softmax over
the whole catalogue. SASRec uses a softmax over all items ("ce") or the original one-negative BCE ("bce").
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import atomic
from ..errors import ProdlensError
from ..progress import progress_bar
from ..runs import check_resume, config_digest
from .data import RecData, Split
from .evaluate import metrics_from_ranks, target_ranks
from .models import RecConfig, build_model, pad_left


# The learning rate is constant, so a resumed run may be given more (or fewer) epochs; nothing else may change.
RESUMABLE_CHANGES = ("config.epochs", "config.patience", "config.full_softmax_epochs")


def _batches(sequences: list[list[int]], cfg: RecConfig, rng: np.random.Generator):
    """Shuffled batches of (input, target) windows: the last max_len + 1 items of each training sequence."""
    usable = [s[-(cfg.max_len + 1):] for s in sequences if len(s) >= 2]
    order = rng.permutation(len(usable))
    # Similar lengths share a batch (less padding to compute); batches are then shuffled.
    pool = 32 * cfg.batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(usable[i]))
        batches += [chunk[i:i + cfg.batch_size] for i in range(0, len(chunk), cfg.batch_size)]
    for b in rng.permutation(len(batches)):
        yield [usable[i] for i in batches[b]]


def learn_loss(model, windows: list[list[int]], cfg: RecConfig, rng: np.random.Generator, full: bool) -> torch.Tensor:
    n = model.n_items
    seqs = pad_left(windows, cfg.max_len + 1, n)
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    valid = (inputs != n) & (targets != n)
    users = model.states(inputs)[valid]  # (M, D)
    wanted = targets[valid]  # (M,)
    if full:
        candidates = torch.arange(n)
        labels = wanted
    else:
        extra = torch.from_numpy(rng.integers(0, n, cfg.extra_negatives)) if cfg.extra_negatives else wanted[:0]
        candidates, inverse = torch.unique(torch.cat([wanted, extra]), return_inverse=True)
        labels = inverse[: len(wanted)]
    logits = cfg.scale * users @ model.item_vectors(candidates).T
    return F.cross_entropy(logits, labels)


def sasrec_loss(model, windows: list[list[int]], cfg: RecConfig, rng: np.random.Generator) -> torch.Tensor:
    n = model.n_items
    seqs = pad_left(windows, cfg.max_len + 1, n)
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    valid = (inputs != n) & (targets != n)
    states = model.states(inputs)[valid]
    wanted = targets[valid]
    if cfg.sasrec_loss == "ce":
        return F.cross_entropy(states @ model.item_vectors().T, wanted)
    negatives = torch.from_numpy(rng.integers(0, n, len(wanted)))
    pos = (states * model.item_vectors(wanted)).sum(-1)
    neg = (states * model.item_vectors(negatives)).sum(-1)
    return F.binary_cross_entropy_with_logits(torch.cat([pos, neg]), torch.cat([torch.ones_like(pos),
                                                                               torch.zeros_like(neg)]))


class RecTrainer:
    def __init__(self, cfg: RecConfig, data: RecData, split: Split, out_dir: str | Path,
                 content: np.ndarray | None = None, progress: bool = True):
        self.cfg, self.data, self.split = cfg, data, split
        self.out = Path(out_dir)
        self.progress = progress
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, data.n_items, content)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(cfg.seed + 1)
        cases = split.valid
        if len(cases) > cfg.eval_users:
            cases = [cases[i] for i in sorted(rng.choice(len(cases), cfg.eval_users, replace=False))]
        self.valid_cases = cases

    def validate(self) -> dict:
        ranks = target_ranks(self.model, self.valid_cases, self.data.n_items, self.cfg.max_len)
        return metrics_from_ranks(ranks)

    def fit(self, resume: bool = False) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        start_epoch, best, history, stale = 0, {"R@10": -1.0}, [], 0
        if resume and (self.out / "last.pt").exists():
            state = torch.load(self.out / "last.pt", map_location="cpu", weights_only=False)
            check_resume(self.out / "last.pt",
                         {"config": state.get("config"), "item catalogue": config_digest(state.get("item_ids"))},
                         {"config": cfg.to_dict(), "item catalogue": config_digest(self.data.item_ids)},
                         ignore=RESUMABLE_CHANGES)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            start_epoch, best, history, stale = state["epoch"], state["best"], state["history"], state["stale"]
            torch.set_rng_state(state["torch_rng"])
        else:
            (self.out / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run does not append to an old log
        total = cfg.epochs + (cfg.full_softmax_epochs if cfg.model == "learn" else 0)
        samples, train_seconds = 0, 0.0
        started = time.time()
        with progress_bar(total - start_epoch, f"training {cfg.model}", enabled=self.progress) as advance:
            for epoch in range(start_epoch, total):
                if stale >= cfg.patience and epoch < cfg.epochs:
                    advance(1)
                    continue  # early-stopped: skip to the optional full-softmax stage
                if epoch == cfg.epochs and epoch > 0 and (self.out / "best.pt").exists():
                    # the full-softmax stage fine-tunes the best in-batch model, not the last (stale) one
                    best_state = torch.load(self.out / "best.pt", map_location="cpu", weights_only=False)
                    self.model.load_state_dict(best_state["model"])
                rng = np.random.default_rng(cfg.seed * 1000 + epoch)
                self.model.train()
                losses = []
                t0 = time.perf_counter()
                for windows in _batches(self.split.train, cfg, rng):
                    if cfg.model == "learn":
                        loss = learn_loss(self.model, windows, cfg, rng, full=epoch >= cfg.epochs)
                    else:
                        loss = sasrec_loss(self.model, windows, cfg, rng)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
                    self.optimizer.step()
                    losses.append(loss.item())
                    samples += sum(len(w) - 1 for w in windows)
                train_seconds += time.perf_counter() - t0
                if not math.isfinite(np.mean(losses)):
                    raise ProdlensError(f"training diverged at epoch {epoch + 1} (loss {np.mean(losses)}); lower the lr")
                metrics = self.validate()
                history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **metrics})
                improved = metrics["R@10"] > best["R@10"]
                if improved:
                    best = {"epoch": epoch + 1, **metrics}
                    stale = 0
                    self._save("best.pt", epoch + 1, best, history, stale)
                else:
                    stale += 1
                self._save("last.pt", epoch + 1, best, history, stale)
                with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(history[-1]) + "\n")
                advance(1)
        summary = {"best": best, "epochs_run": len(history), "samples_per_s": samples / max(train_seconds, 1e-9),
                   "minutes": (time.time() - started) / 60, "history": history}
        best_state = torch.load(self.out / "best.pt", map_location="cpu", weights_only=False)
        self.model.load_state_dict(best_state["model"])
        return summary

    def _save(self, name: str, epoch: int, best: dict, history: list, stale: int) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": epoch,
                 "best": best, "history": history, "stale": stale, "config": self.cfg.to_dict(),
                 "item_ids": self.data.item_ids, "torch_rng": torch.get_rng_state(), "format": "prodlens-rec-1"}
        with atomic.atomic_path(self.out / name) as tmp:
            torch.save(state, tmp)


def load_rec_checkpoint(path: str | Path):
    """(model, config, item ids) from a run directory (best.pt) or a .pt file."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise ProdlensError(f"no recommender checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ProdlensError(f"cannot read {path}: {e}") from e
    if state.get("format") != "prodlens-rec-1":
        raise ProdlensError(f"{path} is not a prodlens recommender checkpoint")
    cfg = RecConfig(**state["config"])
    n_items = len(state["item_ids"])
    content = state["model"]["content"][:-1].numpy() if cfg.model == "learn" else None
    model = build_model(cfg, n_items, content)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg, state["item_ids"]
