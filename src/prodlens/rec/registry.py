"""The recommender models, one entry each: what a model is (`RecModel`, the methods training, evaluation and serving
call), its defaults, the settings it reads, how it is built and loaded, and what it can do (read item content, place
items it was never trained on). Training, evaluation, serving and the CLI ask the entry; none of them names a model.

A new model is a class with `RecModel`'s methods plus one `ModelSpec` in `REGISTRY`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np
import torch

from .config import LOSSES, RecConfig
from .models import BSARec, LEARN, SASRec


@runtime_checkable
class RecModel(Protocol):
    """A trained sequential recommender. Histories are left-padded (B, L) item indices of its training catalogue
    (`n_items`: padding); scores are dot products of user and item vectors."""
    cfg: RecConfig
    causal: bool  # True: every position's state trains at once; False: trained prefix by prefix

    @property
    def n_items(self) -> int: ...

    def states(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) item indices → user states, (B, L, D) (causal) or (B, 1, D)."""

    def user_vectors(self, slots: torch.Tensor, pad: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        """The user vector after histories given by id slots, padding and (content models) standardised content."""

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors of the training catalogue (all, or the given indices)."""

    def logit_scale(self) -> float | torch.Tensor: ...

    def table_vectors(self, slots: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        """Served item vectors (× the logit scale) of item table rows: their id slots (-1: none) and raw content."""


# Settings that only some models read; a model refuses a change to one it does not read (it would be ignored).
MODEL_SPECIFIC = frozenset({"encoder", "item_ids", "id_dropout", "out_dim", "scale", "learn_scale", "item_prior",
                            "lazy_ids_above", "frequency_cutoff", "frequency_mix", "contrastive",
                            "contrastive_positive"})
_FIELD_DEFAULTS = {f.name: f.default for f in fields(RecConfig)}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str
    defaults: Mapping[str, Any]  # its values of RecConfig's per-model fields (prodlens.rec.config.PER_MODEL)
    reads: frozenset[str] = frozenset()  # the MODEL_SPECIFIC settings it reads
    losses: tuple[str, ...] = ()  # the losses it trains with
    build: Callable[[RecConfig, int, int | None, np.ndarray | None], RecModel] | None = None  # None: not trained
    content: bool = False  # reads item content vectors (a text encoder's): computed before training and serving
    new_items: bool = False  # places items it was not trained on (a content tower): the catalogue can grow
    # a configuration saved by an earlier release: the first format's settings, given its `sasrec_loss`, and the
    # values this model had for settings added since (what its saved weights were trained with)
    first_format: Callable[[str], dict] = lambda old: {}
    saved_before: Mapping[str, Any] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        return self.build is not None

    def check(self, cfg: RecConfig) -> None:
        """A configuration this model can run: its loss, and no change to a setting it does not read."""
        if self.losses and cfg.loss not in self.losses:
            raise ValueError(f"loss {cfg.loss} is not {self.name}'s: it trains with {', '.join(self.losses)}")
        ignored = sorted(k for k in MODEL_SPECIFIC - self.reads if getattr(cfg, k) != _FIELD_DEFAULTS[k])
        if ignored:
            readers = [s.name for s in REGISTRY.values() if ignored[0] in s.reads]
            raise ValueError(f"{', '.join(ignored)}: not a setting of {self.name} (read by {', '.join(readers)})")

    def new(self, cfg: RecConfig, n_items: int, content: np.ndarray | None = None,
            trained: np.ndarray | None = None) -> RecModel:
        """A fresh model for a catalogue of `n_items`. `content`: the items' raw content vectors (content models:
        their standardisation is fitted on them); `trained`: (n_items,) bool, the items seen in training."""
        if self.build is None:
            raise ValueError(f"{self.name} has no trainable model")
        if self.content and content is None:
            raise ValueError(f"{self.name} needs content vectors")
        model = self.build(cfg, n_items, None if content is None else content.shape[1], trained)
        return model.attach(content, fit=True) if self.content else model

    def from_weights(self, cfg: RecConfig, weights: dict, n_items: int) -> RecModel:
        """A model of this kind from a checkpoint's weights (content models: the content dimension is read off
        their first layer; the content itself is attached by the caller)."""
        content_dim = weights["project.weight"].shape[1] if self.content else None
        model = self.build(cfg, n_items, content_dim, None)
        model.load_state_dict(weights)
        return model.eval()


# the id models' shared defaults: d 64, the full softmax, 2 layers, dropout 0.5, N(0, 0.02) positions, one model
_ID_MODELS = {"dim": 64, "loss": "softmax", "layers": 2, "dropout": 0.5, "position_std": 0.02, "members": 1,
              "ema_half_life": 0.0, "patience": 10}

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    # LEARN: chosen on Amazon Beauty validation (docs/recommendation.md). Weight averaging with a half-life of 3
    # epochs: one model validates 0.1200 / 0.1182 / 0.1188 R@10 over three seeds against 0.1140 / 0.1123 / 0.1153
    # without (2.9, 2.8, 1.7 standard errors), test 0.1010 / 0.0995 / 0.1006. The averaged weights' validation
    # curve is smooth (a new best every epoch up to the peak), so early stopping waits 5 epochs, not 10: on Beauty
    # the same best epoch (19) and model, in 24 epochs instead of 29.
    ModelSpec("learn", "LEARN: frozen content vectors + twin-tower causal transformer (content + id item tower)",
              {"dim": 128, "loss": "uniform", "layers": 1, "heads": 1, "dropout": 0.2, "position_std": 1.0,
               "members": 1, "ema_half_life": 3.0, "patience": 5},
              reads=frozenset({"encoder", "item_ids", "id_dropout", "out_dim", "scale", "learn_scale", "item_prior",
                               "lazy_ids_above", "contrastive", "contrastive_positive"}),
              losses=("softmax", "uniform", "shared", "sampled"),
              build=lambda cfg, n, content_dim, trained: LEARN(cfg, n, content_dim, trained),
              content=True, new_items=True,
              first_format=lambda old: {"loss": "sampled", "item_ids": False},
              saved_before={"learn_scale": False}),
    # SASRec: the full softmax with SASRec's dropout for sparse Amazon data; positions start as small as its items
    # (std 0.02: +4.9% validation R@10 on Beauty, +12% on Scientific over torch's N(0, 1))
    ModelSpec("sasrec", "SASRec: item-id embeddings + causal transformer", {**_ID_MODELS, "heads": 2},
              reads=frozenset({"contrastive", "contrastive_positive"}), losses=LOSSES,
              build=lambda cfg, n, content_dim, trained: SASRec(n, cfg),
              first_format=lambda old: {"loss": "bce" if old == "bce" else "softmax"}),
    # BSARec: its authors' Amazon Beauty setting (1 head, dropout 0.5 on states and attention, N(0, 0.02) starts)
    ModelSpec("bsarec", "BSARec: SASRec's ids with a frequency filter mixed into every attention layer",
              {**_ID_MODELS, "heads": 1}, reads=frozenset({"frequency_cutoff", "frequency_mix"}), losses=LOSSES,
              build=lambda cfg, n, content_dim, trained: BSARec(n, cfg)),
    # popularity: training frequency; nothing to train, nothing to serve per user
    ModelSpec("pop", "popularity: training frequency",
              {"dim": 64, "loss": "softmax", "layers": 1, "heads": 1, "dropout": 0.0, "position_std": 1.0,
               "members": 1, "ema_half_life": 0.0, "patience": 10}),
)}
MODELS = tuple(REGISTRY)


def model_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ValueError(f"model must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def new_model(cfg: RecConfig, n_items: int, content: np.ndarray | None = None,
              trained: np.ndarray | None = None) -> RecModel:
    """A fresh model of `cfg.model` (ModelSpec.new)."""
    return model_spec(cfg.model).new(cfg, n_items, content, trained)
