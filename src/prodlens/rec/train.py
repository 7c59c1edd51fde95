"""Training LEARN or SASRec on leave-one-out training sequences, with validation, checkpoints and resume.

Both train the dense all-action objective: at every history position the user state predicts the next item.
`loss="softmax"` scores it against every item seen in training; `"uniform"` against `negatives` training items drawn
uniformly for each position; `"sampled"` (LEARN's in-batch loss) against the batch's other next items (deduplicated,
so an item is never its own negative) plus `extra_negatives` random training items, optionally followed by
`full_softmax_epochs` of the full softmax; `"bce"` is SASRec's original one-negative loss. Items never seen in
training (the cold-start protocol's hidden items) are never negatives either: they are hidden from training
altogether. LEARN's logits are cosines × a learned scale, SASRec's and BSARec's dot products. A model that is not
causal (BSARec: its filter sees later items) predicts each next item from the prefix before it, run on its own.
`contrastive` adds DuoRec's term on each window's final state (off by default). The optimizer is AdamW, with
LEARN's id table updated lazily in large catalogues (prodlens.rec.optim). An ensemble (`members` > 1) trains its
models one after another, each as a run of its own in `member-<i>/`, then writes the ensemble's checkpoint.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from ..distributed import barrier, setup_distributed
from ..errors import ProdlensError
from ..progress import note, progress_bar
from ..runs import BEST, LAST, RunDir, config_digest, resolve_checkpoint
from ..tensorfile import load_state
from .data import RecData, Sequences, Split, concat_ranges
from .evaluate import metrics_from_ranks, target_ranks
from .models import Members, RecConfig
from .registry import model_spec, new_model
from .optim import RecOptimizer, WeightAverage


# The learning rate is constant, so a resumed run may be given more (or fewer) epochs; nothing else may change.
RESUMABLE_CHANGES = ("config.epochs", "config.patience", "config.full_softmax_epochs")
CHECKPOINT_FORMAT = "prodlens-rec-3"  # LEARN's content vectors live in the item table, not the weights
FORMATS = ("prodlens-rec-1", "prodlens-rec-2", CHECKPOINT_FORMAT)


class Windows:
    """The training windows: the last max_len + 1 items of each training sequence with a next item to predict, as
    (start, end) positions into the sequences' one item array; batches are gathered from it as padded tensors, so
    no Python object exists per interaction or per window."""

    def __init__(self, sequences: Sequences, max_len: int):
        long_enough = sequences.lengths >= 2
        self.items = sequences.items
        self.ends = sequences.ends[long_enough]
        self.starts = np.maximum(sequences.starts[long_enough], self.ends - (max_len + 1))
        self.width = max_len + 1

    def __len__(self) -> int:
        return len(self.ends)

    def trained_items(self, n_items: int) -> np.ndarray:
        """(n_items,) bool: the items that occur in some training window."""
        seen = np.zeros(n_items, bool)
        seen[self.items[concat_ranges(self.starts, self.ends)]] = True
        return seen

    def same_target(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each window of `rows`, another window whose last item (its final next item) is the same, drawn
        uniformly; the window itself when no other has that item."""
        if not hasattr(self, "_by_target"):
            last = self.items[self.ends - 1]
            self._by_target = np.argsort(last, kind="stable")  # windows grouped by last item
            self._last_sorted = last[self._by_target]
            self._place = np.empty(len(last), np.int64)  # each window's place in that order
            self._place[self._by_target] = np.arange(len(last))
        last = self.items[self.ends[rows] - 1]
        lo = np.searchsorted(self._last_sorted, last, "left")
        others = np.searchsorted(self._last_sorted, last, "right") - lo - 1
        place = lo + (rng.random(len(rows)) * np.maximum(others, 1)).astype(np.int64)
        place += place >= self._place[rows]  # skip the window itself
        return np.where(others > 0, self._by_target[np.minimum(place, len(self._by_target) - 1)], rows)

    def positions(self, rows: np.ndarray) -> int:
        """Next-item predictions the windows `rows` hold."""
        return int((self.ends[rows] - self.starts[rows] - 1).sum())

    def batch(self, rows: np.ndarray, pad: int) -> torch.Tensor:
        """(B, L) left-padded item indices of windows `rows`, L = the longest of them."""
        starts, ends = self.starts[rows], self.ends[rows]
        width = int((ends - starts).max())
        positions = ends[:, None] - width + np.arange(width)[None, :]
        inside = positions >= starts[:, None]
        return torch.from_numpy(np.where(inside, self.items[np.maximum(positions, 0)], pad))

    def batches(self, batch_size: int, rng: np.random.Generator):
        """Shuffled batches of window rows. Similar lengths share a batch (less padding to compute); the batches
        are then shuffled."""
        order = rng.permutation(len(self))
        lengths = self.ends - self.starts
        pool = 32 * batch_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


def next_item_loss(model, seqs: torch.Tensor, cfg: RecConfig, rng: np.random.Generator,
                   candidates: torch.Tensor, full: bool, positives: torch.Tensor | None = None) -> torch.Tensor:
    """`seqs`: (B, L) left-padded training windows; `candidates`: the sorted indices of the items seen in training
    (the only possible targets and negatives); `positives`: for the contrastive term, a window with the same last
    item for each of `seqs` (None: `seqs` again, under another dropout draw)."""
    n = model.n_items
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    valid = (inputs != n) & (targets != n)
    if not model.causal:
        return next_item_term(model, model.prefix_states(inputs, valid), targets[valid], cfg, rng, candidates, full)
    states = model.states(inputs)
    loss = next_item_term(model, states[valid], targets[valid], cfg, rng, candidates, full)
    if cfg.contrastive > 0 and len(seqs) > 1:
        other = model.states((seqs if positives is None else positives)[:, :-1])[:, -1]
        loss = loss + cfg.contrastive * contrastive_loss(states[:, -1], other, seqs[:, -1])
    return loss


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """InfoNCE between two views of the same windows' final states, (B, D) each: row i's positive is its own
    second view, its negatives the batch's other windows except those with the same next item (`last`, (B,)): they
    are positives too (DuoRec's mask), both ways. Cosines at SimCSE's temperature 0.05."""
    logits = 20.0 * F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T
    same = (last[:, None] == last[None, :]) & ~torch.eye(len(last), dtype=torch.bool)
    logits = logits.masked_fill(same, -torch.inf)
    labels = torch.arange(len(first))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def next_item_term(model, users: torch.Tensor, wanted: torch.Tensor, cfg: RecConfig, rng: np.random.Generator,
                   candidates: torch.Tensor, full: bool) -> torch.Tensor:
    """The next-item loss of user states (M, D) against their next items (M,)."""
    if cfg.loss == "bce":
        negatives = candidates[torch.from_numpy(rng.integers(0, len(candidates), len(wanted)))]
        pos = (users * model.item_vectors(wanted)).sum(-1)
        neg = (users * model.item_vectors(negatives)).sum(-1)
        return F.binary_cross_entropy_with_logits(torch.cat([pos, neg]),
                                                  torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]))
    if cfg.loss == "uniform":
        return uniform_sampled_softmax(model, users, wanted, candidates, cfg.negatives, rng)
    if cfg.loss == "shared":
        return shared_sampled_softmax(model, users, wanted, candidates, cfg.negatives, rng)
    if full:
        labels = torch.searchsorted(candidates, wanted)
    else:
        extra = candidates[torch.from_numpy(rng.integers(0, len(candidates), cfg.extra_negatives))]
        candidates, inverse = torch.unique(torch.cat([wanted, extra]), return_inverse=True)
        labels = inverse[: len(wanted)]
    logits = model.logit_scale() * users @ model.item_vectors(candidates).T
    return F.cross_entropy(logits, labels)


def uniform_sampled_softmax(model, users: torch.Tensor, wanted: torch.Tensor, candidates: torch.Tensor,
                            negatives: int, rng: np.random.Generator) -> torch.Tensor:
    """Each position's next item against its own `negatives` training items drawn uniformly. Without a correction
    for how often an item is drawn, popular items are pushed down less than by the full softmax (RecTools' loss, as in
    eSASRec, arXiv 2508.06450). On Amazon Beauty it lifts LEARN above the full softmax, not SASRec (README)."""
    positive = torch.searchsorted(candidates, wanted)
    drawn = torch.from_numpy(rng.integers(0, len(candidates), (len(wanted), negatives)))
    columns = torch.cat([positive[:, None], drawn], 1)
    needed, inverse = torch.unique(columns, return_inverse=True)
    if len(needed) < len(candidates) // 2:  # a large catalogue: the item tower runs on the step's items only
        table, columns = model.item_vectors(candidates[needed]), inverse
    else:  # the step needs most items anyway: every training item once, no gather of indices
        table = model.item_vectors(candidates)
    if len(table) <= columns.shape[1] * table.shape[1]:
        # every user against the whole table, then the drawn columns picked: the same logits as gathering each
        # position's item vectors, at a fraction of the memory and time (the gather's backward is a slow scatter)
        scores = (users @ table.T).gather(1, columns)
    else:
        scores = torch.einsum("md,mkd->mk", users, table[columns])
    return _positive_first_softmax(model.logit_scale() * scores, drawn == positive[:, None])


def shared_sampled_softmax(model, users: torch.Tensor, wanted: torch.Tensor, candidates: torch.Tensor,
                           negatives: int, rng: np.random.Generator) -> torch.Tensor:
    """Each position's next item against the same `negatives` training items, drawn uniformly once per step: the
    uniform sampled softmax's estimator (no correction is needed for a uniform draw) with the item tower run only on
    the step's next items and the shared draws, so a step costs the same at any catalogue size."""
    drawn = candidates[torch.from_numpy(rng.integers(0, len(candidates), negatives))]
    needed, inverse = torch.unique(torch.cat([wanted, drawn]), return_inverse=True)
    table = model.item_vectors(needed)
    positive, negative = table[inverse[: len(wanted)]], table[inverse[len(wanted):]]
    logits = model.logit_scale() * torch.cat([(users * positive).sum(-1, keepdim=True), users @ negative.T], 1)
    return _positive_first_softmax(logits, drawn[None, :] == wanted[:, None])


def _positive_first_softmax(logits: torch.Tensor, drawn_positive: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of column 0 (each position's next item) against the drawn columns after it; a draw that is the
    position's own positive (`drawn_positive`, one column shorter) is no negative."""
    drawn_positive = torch.cat([torch.zeros(len(logits), 1, dtype=torch.bool), drawn_positive], 1)
    return F.cross_entropy(logits.masked_fill(drawn_positive, -torch.inf),
                           torch.zeros(len(logits), dtype=torch.long))


class RecTrainer:
    """Trains one model (an ensemble's members: `fit_recommender`)."""

    def __init__(self, cfg: RecConfig, data: RecData, split: Split, out_dir: str | Path,
                 content: np.ndarray | None = None, progress: bool = True):
        if cfg.members != 1:
            raise ValueError(f"RecTrainer trains one model, not an ensemble of {cfg.members} (fit_recommender)")
        self.cfg, self.data, self.split = cfg, data, split
        self.out = Path(out_dir)
        self.rank, self.world = setup_distributed()  # under torchrun: data-parallel over the processes
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg.seed)  # the same initial weights in every process
        self.windows = Windows(split.train, cfg.max_len)
        trained = self.windows.trained_items(data.n_items)
        if not trained.any():
            raise ProdlensError("no training sequence has two items: nothing to train on")
        self.candidates = torch.from_numpy(np.flatnonzero(trained))
        self.model = new_model(cfg, data.n_items, content, trained)
        self.optimizer = RecOptimizer(self.model, cfg.lr, cfg.weight_decay, cfg.lazy_ids_above)
        self.average = None
        if cfg.ema_half_life > 0:
            steps_per_epoch = max(1, math.ceil(len(self.windows) / cfg.batch_size) // self.world)
            self.average = WeightAverage(self.model, cfg.ema_half_life * steps_per_epoch, self.optimizer.ids)
        if self.world > 1:
            torch.manual_seed(cfg.seed * 1000 + self.rank)  # each process its own dropout
        rng = np.random.default_rng(cfg.seed + 1)
        cases = split.valid
        if len(cases) > cfg.eval_users:
            cases = [cases[i] for i in sorted(rng.choice(len(cases), cfg.eval_users, replace=False))]
        self.valid_cases = cases

    def validate(self) -> dict:
        """Validation metrics of the served (averaged) weights, computed by rank 0 and shared with the others."""
        metrics = [None]
        if self.rank == 0:
            with self.served_weights():
                ranks = target_ranks(self.model, self.valid_cases, self.data.n_items, self.cfg.max_len)
            metrics = [metrics_from_ranks(ranks)]
        if self.world > 1:
            dist.broadcast_object_list(metrics, src=0)
        return metrics[0]

    @contextmanager
    def served_weights(self):
        """The model holds the weights it will be saved and served with (the average, with `ema_half_life`)."""
        if self.average is None:
            yield
            return
        trained = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        self.model.load_state_dict(self.average.state_dict(copy=False))  # copied into the model's own tensors
        try:
            yield
        finally:
            self.model.load_state_dict(trained)

    def identity(self) -> dict:
        return run_identity(self.cfg, self.data.item_ids)

    def fit(self, resume: bool = False) -> dict:
        cfg = self.cfg
        run = RunDir(self.out, writer=self.rank == 0)
        start_epoch, best, history, stale = 0, {"R@10": -1.0}, [], 0
        state = run.start(resume, self.identity(), ignore=RESUMABLE_CHANGES, upgrade=upgrade_identity)
        if state is not None:
            self.model.load_state_dict(state.get("trained", state["model"]))
            if self.average is not None:
                self.average.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            start_epoch, best, history, stale = state["epoch"], state["best"], state["history"], state["stale"]
            torch.set_rng_state(state["torch_rng"])
        total = cfg.epochs + (cfg.full_softmax_epochs if cfg.loss == "sampled" else 0)
        samples, train_seconds = 0, 0.0
        started = time.time()
        with progress_bar(total - start_epoch, f"training {cfg.model} (epochs, at most)", enabled=self.progress,
                          upper_bound=True) as advance:
            for epoch in range(start_epoch, total):
                if stale >= cfg.patience and epoch < cfg.epochs:
                    advance(1)
                    continue  # early-stopped: skip to the optional full-softmax stage
                if epoch == cfg.epochs and epoch > 0 and self._saved(run, BEST):
                    # the full-softmax stage fine-tunes the best sampled-softmax model, not the last (stale) one
                    self.model.load_state_dict(run.load(BEST)["model"])
                    if self.average is not None:
                        self.average.reset()
                epoch_start = time.perf_counter()
                loss, seconds, positions = self._epoch(epoch)
                samples, train_seconds = samples + positions, train_seconds + seconds
                metrics = self.validate()
                lr = self.optimizer.param_groups[0]["lr"]  # the lr this epoch trained with
                history.append({"epoch": epoch + 1, "loss": loss, "lr": lr, **metrics})
                if metrics["R@10"] > best["R@10"]:
                    best, stale = {"epoch": epoch + 1, **metrics}, 0
                    self._save(run, BEST, epoch + 1, best, history, stale)
                else:
                    stale += 1
                    if stale % cfg.lr_patience == 0:  # a plateau: smaller steps (the optimizer state keeps the lr)
                        for group in self.optimizer.param_groups:
                            group["lr"] *= cfg.lr_decay
                self._save(run, LAST, epoch + 1, best, history, stale)
                run.log(history[-1])
                if self.progress:
                    left = min(total - epoch - 1, cfg.patience - stale if epoch < cfg.epochs else total)
                    took = time.perf_counter() - epoch_start
                    note(f"{cfg.model} epoch {epoch + 1}: loss {loss:.4f}, valid R@10 {metrics['R@10']:.4f} "
                         f"(best {best['R@10']:.4f} at {best['epoch']}), {took:.0f} s; "
                         f"early stop within {left} epoch(s) (~{left * took / 60:.0f} min) without a new best")
                advance(1)
        self._saved(run, BEST)
        self.model.load_state_dict(run.load(BEST)["model"])
        if self.world > 1:  # every process's predictions count
            counted = torch.tensor([float(samples)])
            dist.all_reduce(counted)
            samples = int(counted.item())
        return {"best": best, "epochs_run": len(history), "samples_per_s": samples / max(train_seconds, 1e-9),
                "minutes": (time.time() - started) / 60, "history": history}

    def _epoch(self, epoch: int) -> tuple[float, float, int]:
        """One pass over the training windows: (mean loss, seconds, next-item predictions made)."""
        cfg = self.cfg
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)
        full = cfg.loss == "softmax" or epoch >= cfg.epochs
        self.model.train()
        losses, positions = [], 0
        t0 = time.perf_counter()
        batches = list(self.windows.batches(cfg.batch_size, rng))  # the same order in every process
        negatives = rng
        if self.world > 1:  # process r takes every world-th batch (as many steps each) and draws its own negatives
            batches = batches[self.rank:len(batches) // self.world * self.world:self.world]
            negatives = np.random.default_rng([cfg.seed * 1000 + epoch, self.rank])
        for rows in batches:
            positives = None
            if cfg.contrastive > 0 and cfg.contrastive_positive == "same-target":
                positives = self.windows.batch(self.windows.same_target(rows, negatives), self.model.n_items)
            loss = next_item_loss(self.model, self.windows.batch(rows, self.model.n_items), cfg, negatives,
                                  self.candidates, full, positives)
            self.optimizer.zero_grad()
            loss.backward()
            if self.world > 1:
                average_gradients(self.model, self.world)
            self.optimizer.clip_gradients(5.0)
            if self.average is not None:
                self.average.before_step(self.optimizer.id_rows_to_step())
            self.optimizer.step()
            if self.average is not None:
                self.average.after_step()
            losses.append(loss.item())
            positions += self.windows.positions(rows)
        mean = float(np.mean(losses))
        if not math.isfinite(mean):
            raise ProdlensError(f"training diverged at epoch {epoch + 1} (loss {mean}); lower the lr")
        return mean, time.perf_counter() - t0, positions

    def _saved(self, run: RunDir, name: str) -> bool:
        """Whether rank 0 has written checkpoint `name`, once every process has reached this point."""
        barrier()
        return run.has(name)

    def _save(self, run: RunDir, name: str, epoch: int, best: dict, history: list, stale: int) -> None:
        """`model`: the served weights (the average, with `ema_half_life`; then `trained`: the model's own)."""
        weights = {"model": self.model.state_dict()}
        if self.average is not None:
            weights = {"model": self.average.state_dict(copy=False), "trained": weights["model"]}
        run.save(name, {**weights, "optimizer": self.optimizer.state_dict(), "epoch": epoch,
                        "best": best, "history": history, "stale": stale, "config": self.cfg.to_dict(),
                        "item_ids": self.data.item_ids, "torch_rng": torch.get_rng_state(),
                        "format": CHECKPOINT_FORMAT}, identity=self.identity())


def fit_recommender(cfg: RecConfig, data: RecData, split: Split, out_dir: str | Path,
                    content: np.ndarray | None = None, progress: bool = True, resume: bool = False):
    """(trained model, summary): one model's RecTrainer run in `out_dir`, or for an ensemble each member's run in
    `out_dir/member-<i>` (seeds seed, seed + 1, ...; each early-stopped on its own validation), then the ensemble,
    validated on the same cases and written to `out_dir` as its best checkpoint (rank 0; the other processes of a
    torchrun only train)."""
    if cfg.members == 1:
        trainer = RecTrainer(cfg, data, split, out_dir, content, progress)
        return trainer.model, trainer.fit(resume=resume)
    members, summaries = [], []
    for i in range(cfg.members):
        if progress:
            print(f"ensemble member {i + 1} of {cfg.members} (seed {cfg.seed + i})", flush=True)
        trainer = RecTrainer(cfg.member(i), data, split, Path(out_dir) / f"member-{i}", content, progress)
        summaries.append(trainer.fit(resume=resume))
        members.append(trainer.model)
    model = Members(cfg, members).eval()
    best = {}
    if trainer.rank == 0:
        ranks = target_ranks(model, trainer.valid_cases, data.n_items, cfg.max_len)
        best = {"epoch": [s["best"].get("epoch") for s in summaries], **metrics_from_ranks(ranks)}
        RunDir(out_dir).save(BEST, {"model": model.state_dict(), "best": best,
                                    "members": [s["best"] for s in summaries], "config": cfg.to_dict(),
                                    "item_ids": data.item_ids, "format": CHECKPOINT_FORMAT},
                             identity=run_identity(cfg, data.item_ids))
    return model, {"best": best, "epochs_run": sum(s["epochs_run"] for s in summaries),
                   "samples_per_s": sum(s["samples_per_s"] for s in summaries) / len(summaries),
                   "minutes": sum(s["minutes"] for s in summaries), "members": [s["best"] for s in summaries]}


def run_identity(cfg: RecConfig, item_ids: list[str]) -> dict:
    """What a resumed run must share with the checkpoint it continues."""
    return {"config": cfg.to_dict(), "item catalogue": config_digest(item_ids)}


def upgrade_identity(saved: dict) -> dict:
    """A saved run's identity with its configuration as this release writes it (settings added since: defaults)."""
    if not isinstance(saved.get("config"), dict):
        return saved
    return {**saved, "config": RecConfig.from_dict(saved["config"]).to_dict()}


def average_gradients(model: torch.nn.Module, world: int) -> None:
    """Data parallelism without DDP's wrapper (the losses call the towers' methods, not forward): one all-reduce of
    every dense gradient, flattened into a single buffer, then divided by the number of processes; a sparse one (a
    lazily updated id table) is gathered row by row from every process instead."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            sparse = getattr(getattr(model, "ids", None), "sparse", False) and p is model.ids.weight
            p.grad = (torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), p.new_zeros(0, *p.shape[1:]),
                                              p.shape) if sparse else torch.zeros_like(p))
    grads = [p.grad for p in params if not p.grad.is_sparse]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)
    for p in params:
        if p.grad.is_sparse:
            p.grad = _gathered_rows(p.grad, world)


def _gathered_rows(grad: torch.Tensor, world: int) -> torch.Tensor:
    """The mean over processes of a sparse row gradient: every process's rows, gathered, summed, / world."""
    grad = grad.coalesce()
    rows, values = grad.indices()[0], grad.values()
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([len(rows)]))
    most = max(int(c) for c in counts)
    padded_rows = F.pad(rows, (0, most - len(rows)))
    padded_values = F.pad(values, (0, 0, 0, most - len(rows)))
    all_rows, all_values = [torch.empty_like(padded_rows) for _ in range(world)], \
        [torch.empty_like(padded_values) for _ in range(world)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_values, padded_values)
    rows = torch.cat([r[:int(c)] for r, c in zip(all_rows, counts)])
    values = torch.cat([v[:int(c)] for v, c in zip(all_values, counts)])
    return (torch.sparse_coo_tensor(rows[None], values, grad.shape) / world).coalesce()


def load_rec_checkpoint(path: str | Path):
    """(model, config, item ids) from a run directory (its best checkpoint, else its last) or a checkpoint file.
    A LEARN model comes without content (`model.attach` it) unless the checkpoint predates the item table: then the
    standardised content stored in its weights is attached and `model.legacy_content` is set."""
    path = resolve_checkpoint(path)
    state = load_state(path)
    if state.get("format") not in FORMATS:
        raise ProdlensError(f"{path} is not a prodlens recommender checkpoint")
    cfg = RecConfig.from_dict(state["config"])
    weights = dict(state["model"])
    n_items = len(state["item_ids"])
    if cfg.members > 1:
        members = []
        for i in range(cfg.members):
            prefix = f"members.{i}."
            part = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
            members.append(_loaded_model(cfg.member(i), part, n_items, state["format"]))
        return Members(cfg, members).eval(), cfg, state["item_ids"]
    return _loaded_model(cfg, weights, n_items, state["format"]), cfg, state["item_ids"]


def _loaded_model(cfg: RecConfig, weights: dict, n_items: int, checkpoint_format: str):
    """One model from its saved weights (LEARN without content, unless it is a legacy checkpoint's)."""
    if checkpoint_format == "prodlens-rec-1":  # LEARN's adapter was one Sequential(Linear, LayerNorm)
        weights = {k.replace("adapter.0.", "project.").replace("adapter.1.", "norm."): v for k, v in weights.items()}
    spec = model_spec(cfg.model)
    legacy = weights.pop("content", None)  # LEARN before prodlens-rec-3: standardised content rows + a padding row
    if legacy is not None:
        weights.setdefault("content_mean", torch.zeros(legacy.shape[1]))
        weights.setdefault("content_std", torch.ones(legacy.shape[1]))
        weights.setdefault("has_id", torch.ones(n_items + 1, dtype=torch.bool).index_fill_(0, torch.tensor(n_items),
                                                                                          False))
    model = spec.from_weights(cfg, weights, n_items)
    if legacy is not None:
        model.attach(legacy[:-1])
        model.legacy_content = True
    return model
