"""The recommenders' optimizer: AdamW, with LEARN's id table updated lazily in large catalogues.

Dense, Adam reads and writes the whole id table, its gradient and both moments every step: at 1M items × d 128
that is four 512 MB tables a step, whatever the step looked up. From `lazy_ids_above` training items (a RecConfig
setting, 100,000 by default) the id table's gradient is sparse (the rows the step looked up) and only those rows'
moments and values change, with AdamW's own arithmetic on them (the lazy Adam of TensorFlow Addons; torch's
SparseAdam differs from AdamW in where eps goes). A row a step does not touch keeps its value, where dense Adam
would still move it by its decaying momentum. Below the threshold the full and uniform losses look every training
item up every step, so lazy and dense are one update there; the threshold keeps the benchmarks' optimizer exactly
as it was.
"""
from __future__ import annotations

import torch


class RecOptimizer:
    """AdamW over the model's weights (`param_groups` as AdamW's, so the lr can be changed), and, when `lazy`, the
    id table apart. Its state dict below the threshold is AdamW's, so runs saved before this class resume."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float, lazy_above: int):
        ids = getattr(model, "ids", None)
        self.lazy = ids is not None and model.n_items >= lazy_above
        self.ids = ids.weight if self.lazy else None
        self._ids_place = next((i for i, p in enumerate(model.parameters()) if p is self.ids), None)
        if ids is not None:
            ids.sparse = self.lazy  # lazy: backward gives the looked-up rows only
        self.dense = torch.optim.AdamW([p for p in model.parameters() if p is not self.ids], lr=lr,
                                       weight_decay=weight_decay)
        self.id_state = self._fresh_id_state() if self.lazy else None

    def _fresh_id_state(self) -> dict:
        return {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(self.ids),
                "exp_avg_sq": torch.zeros_like(self.ids)}

    @property
    def param_groups(self) -> list[dict]:
        return self.dense.param_groups

    def parameters(self) -> list[torch.Tensor]:
        return [p for group in self.dense.param_groups for p in group["params"]] + ([self.ids] if self.lazy else [])

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)
        if self.lazy:
            self.ids.grad = None

    def clip_gradients(self, max_norm: float) -> None:
        """clip_grad_norm_ over every gradient; a sparse one counts its rows (coalesced first: duplicates summed)."""
        if not self.lazy or self.ids.grad is None:
            torch.nn.utils.clip_grad_norm_(self.parameters(), max_norm)
            return
        self.ids.grad = self.ids.grad.coalesce()
        dense = [p.grad for p in self.parameters() if p.grad is not None and not p.grad.is_sparse]
        norms = torch.stack([g.norm() for g in dense] + [self.ids.grad.values().norm()])
        scale = (max_norm / (norms.norm() + 1e-6)).clamp(max=1.0)
        for g in dense:
            g.mul_(scale)
        self.ids.grad.values().mul_(scale)

    def id_rows_to_step(self) -> torch.Tensor | None:
        """The lazy id table's rows the next step changes (None: not lazy, or no row)."""
        if not self.lazy or self.ids.grad is None:
            return None
        self.ids.grad = self.ids.grad.coalesce()
        return self.ids.grad.indices()[0]

    @torch.no_grad()
    def step(self) -> None:
        self.dense.step()
        if self.lazy and self.ids.grad is not None:
            self._lazy_step()

    def _lazy_step(self) -> None:
        """AdamW's update (torch's single-tensor arithmetic) on the rows of the sparse gradient only."""
        group = self.dense.param_groups[0]
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        grad = self.ids.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        state = self.id_state
        state["step"] += 1
        step = float(state["step"])
        param = self.ids.data[rows]
        if decay:
            param.mul_(1 - lr * decay)
        exp_avg = state["exp_avg"][rows].lerp_(values, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"][rows].mul_(beta2).addcmul_(values, values, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1 ** step))
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        self.ids.data.index_copy_(0, rows, param)

    def state_dict(self) -> dict:
        if not self.lazy:
            return self.dense.state_dict()
        return {"dense": self.dense.state_dict(), "ids": dict(self.id_state)}

    def load_state_dict(self, state: dict) -> None:
        if not self.lazy:
            self.dense.load_state_dict(state)
            return
        if "dense" not in state:  # saved when one AdamW held every weight: its id-table entry moves here
            state = self._split(state)
        self.dense.load_state_dict(state["dense"])
        self.id_state = {k: torch.as_tensor(v).clone() for k, v in state["ids"].items()}

    def _split(self, adamw: dict) -> dict:
        place, moments = self._ids_place, adamw["state"]
        renumber = lambda i: int(i) - (int(i) > place)  # noqa: E731
        groups = [{**g, "params": [renumber(i) for i in g["params"] if int(i) != place]}
                  for g in adamw["param_groups"]]
        ids = moments.get(place, moments.get(str(place)))
        if ids is None:  # saved before its first step
            ids = self._fresh_id_state()
        dense = {renumber(i): v for i, v in moments.items() if int(i) != place}
        return {"dense": {"state": dense, "param_groups": groups}, "ids": ids}


class WeightAverage:
    """Polyak averaging: an exponential moving average of a model's weights, updated after every optimizer step, with
    a half-life in steps. Its weights are the ones validated, saved and served; training goes on with the model's
    own. A lazily updated id table is averaged lazily too: a row no step touches keeps its value, so its average
    can be brought forward over k steps at once (× decay^k, exactly), when a step is about to change the row and
    when the average is read; a step costs the rows it looked up, not the catalogue."""

    def __init__(self, model: torch.nn.Module, half_life_steps: float, lazy_ids: torch.Tensor | None = None):
        if half_life_steps <= 0:
            raise ValueError(f"half_life_steps must be > 0, got {half_life_steps}")
        self.model, self.decay, self.lazy_ids = model, 0.5 ** (1.0 / half_life_steps), lazy_ids
        self.named = [(name, p) for name, p in model.named_parameters()]
        self.lazy_name = next((name for name, p in self.named if p is lazy_ids), None)
        self.reset()

    def reset(self) -> None:
        """Start the average at the model's current weights."""
        self.shadow = {name: p.detach().clone() for name, p in self.named}
        # what every step averages: all weights but the lazy table, as two lists for one fused lerp
        self._dense_shadow = [self.shadow[name] for name, _ in self.named if name != self.lazy_name]
        self._dense_params = [p.detach() for name, p in self.named if name != self.lazy_name]
        self.steps = 0
        self.caught_up = None if self.lazy_ids is None else torch.zeros(len(self.lazy_ids), dtype=torch.long)

    @torch.no_grad()
    def before_step(self, rows: torch.Tensor | None) -> None:
        """Bring the lazy table's `rows` (the ones this step will change) up to date with their current values."""
        if self.lazy_ids is not None and rows is not None and len(rows):
            self._catch_up(rows)

    def _catch_up(self, rows: torch.Tensor) -> None:
        shadow = self.shadow[self.lazy_name]
        kept = torch.pow(self.decay, (self.steps - self.caught_up[rows]).double()).float()[:, None]
        shadow[rows] = kept * shadow[rows] + (1 - kept) * self.lazy_ids.detach()[rows]
        self.caught_up[rows] = self.steps

    @torch.no_grad()
    def after_step(self) -> None:
        torch._foreach_lerp_(self._dense_shadow, self._dense_params, 1 - self.decay)
        self.steps += 1

    @torch.no_grad()
    def state_dict(self, copy: bool = True) -> dict:
        """The model's state dict with the averaged weights in place of its own (buffers as they are); `copy=False`
        hands out the average itself (to be copied from at once: the next step changes it)."""
        if self.lazy_ids is not None:
            self._catch_up(torch.arange(len(self.lazy_ids)))
        averaged = dict(self.model.state_dict())
        averaged.update({name: tensor.clone() if copy else tensor for name, tensor in self.shadow.items()})
        return averaged

    @torch.no_grad()
    def load_state_dict(self, weights: dict) -> None:
        """Continue from saved averaged weights (`state_dict()`'s)."""
        self.reset()
        for name, tensor in self.shadow.items():
            tensor.copy_(weights[name])
