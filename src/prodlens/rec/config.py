"""A recommender run's settings (imports no model: the command line reads them at start). Each model's own defaults
and the settings it reads are its entry in prodlens.rec.registry."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..specs import parse_assignments

# From this many item rows, top-k goes through an HNSW graph over the item vectors (prodlens.rec.item_graph) instead
# of the exact product with every vector (~6 ms of CPU per user at 1M items, bench/rec_train.py). Off by default: the
# first process to serve a run builds the graph (over 15 minutes at 1M items on 2 cores; it is saved with the run and
# opened by the processes after it), and the exact product's answers need no recall caveat.
ANN_ABOVE: int | None = None
LOSSES = ("softmax", "uniform", "shared", "sampled", "bce")
# The fields each model sets for itself when left unset (None): its entry in prodlens.rec.registry gives the values.
PER_MODEL = ("dim", "loss", "layers", "heads", "dropout", "position_std", "members", "ema_half_life", "patience")


@dataclass
class RecConfig:
    model: str = "learn"
    encoder: str = "minilm"  # LEARN content encoder (see prodlens.rec.content)
    item_ids: bool = True  # LEARN: content + learned id embedding for items seen in training (cold: content only)
    id_dropout: float = 0.2  # LEARN: share of training tokens whose id embedding is dropped (trains the cold path)
    dim: int | None = None  # None: the model's default (its entry in prodlens.rec.registry)
    out_dim: int | None = None  # LEARN: user/item vector size (default: dim)
    layers: int | None = None
    heads: int | None = None
    dropout: float | None = None
    position_std: float | None = None  # the position embeddings' starting spread
    # an ensemble: this many models of this configuration, trained one after another with seeds seed, seed + 1, ...
    # and served as one (`Members`: a score is the sum of theirs); each costs a training and widens the served
    # vectors. None: the model's default (one model; docs/recommendation.md has the measured gains and costs)
    members: int | None = None
    max_len: int = 50
    scale: float = 20.0  # LEARN: cosine logits × scale (LEARN uses 20); the starting value when learn_scale
    learn_scale: bool = True  # LEARN: the scale is a trained parameter (CLIP's temperature), capped at 100
    # LEARN: each item's score gets a learned prior, predicted from its content + id by the item tower (so new items
    # have one too); it rides as one more coordinate of the vectors (items: the prior, users: 1), so every score
    # stays one dot product (exact, batched or ANN)
    item_prior: bool = False
    frequency_cutoff: int = 5  # BSARec's c: its low pass keeps the c // 2 + 1 lowest frequencies of the history
    frequency_mix: float = 0.7  # BSARec's α: each layer's output is α × the filter's + (1 - α) × attention's
    # "softmax": every position against every item seen in training; "uniform": against `negatives` training items
    # drawn uniformly for each position (RecTools' / eSASRec's sampled softmax); "sampled" (LEARN's in-batch loss):
    # against the batch's other next items plus `extra_negatives` random training items; "bce" (SASRec's original):
    # one random negative per position. None: the model's default
    loss: str | None = None
    negatives: int = 256  # "uniform": negatives per position
    # weight of a contrastive term on each window's final state (DuoRec, arXiv 2110.05730), matched against the
    # batch's other windows; 0: off. Its positive (`contrastive_positive`): "dropout", the same window under a second
    # dropout draw (SimCSE's, DuoRec's unsupervised view); "same-target", another training window whose next item is
    # the same (DuoRec's supervised view; the window itself when it has none)
    contrastive: float = 0.0
    contrastive_positive: str = "dropout"
    extra_negatives: int = 1024  # "sampled": random negatives shared by the batch
    batch_size: int = 128
    lr: float = 1e-3
    # LEARN: from this many training items its id table is updated lazily, only the rows a step looked up
    # (prodlens.rec.optim); below it every weight is AdamW's
    lazy_ids_above: int = 100_000
    weight_decay: float = 0.0
    epochs: int = 200
    full_softmax_epochs: int = 0  # after a "sampled" stage: epochs with the full softmax, from the best model
    # Polyak averaging: the weights validated, saved and served are an exponential moving average of the trained
    # ones, with this half-life in epochs (prodlens.rec.optim.WeightAverage); 0: the trained weights themselves.
    # None: the model's default (LEARN 3: +4-5% validation R@10 for one model on Beauty; the id models 0)
    ema_half_life: float | None = None
    patience: int | None = None  # epochs without validation gain before stopping (None: the model's default)
    lr_decay: float = 1.0  # the lr × this after every `lr_patience` epochs without validation gain (1: constant lr)
    lr_patience: int = 3
    eval_users: int = 30_000  # validation cases scored per epoch (a fixed random subset when there are more)
    seed: int = 0

    def __post_init__(self):
        from .registry import model_spec  # the registry builds models from this module: imported when used

        spec = model_spec(self.model)
        for key in PER_MODEL:
            if getattr(self, key) is None:
                setattr(self, key, spec.defaults[key])
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0.0 < self.lr_decay <= 1.0 or self.lr_patience < 1:
            raise ValueError(f"lr_decay must be in (0, 1] and lr_patience ≥ 1, "
                             f"got {self.lr_decay}, {self.lr_patience}")
        if not 0.0 <= self.frequency_mix <= 1.0 or self.frequency_cutoff < 0:
            raise ValueError(f"frequency_mix must be in [0, 1] and frequency_cutoff ≥ 0, "
                             f"got {self.frequency_mix}, {self.frequency_cutoff}")
        if self.contrastive < 0:
            raise ValueError(f"contrastive must be ≥ 0, got {self.contrastive}")
        if self.contrastive_positive not in ("dropout", "same-target"):
            raise ValueError(f"contrastive_positive must be dropout or same-target, got {self.contrastive_positive!r}")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {self.id_dropout}")
        self.ema_half_life = float(self.ema_half_life)  # `--set ema_half_life=3` is the same run as 3.0
        if self.ema_half_life < 0:
            raise ValueError(f"ema_half_life must be ≥ 0 (epochs; 0: off), got {self.ema_half_life}")
        if self.members < 1:
            raise ValueError(f"members must be ≥ 1, got {self.members}")
        spec.check(self)

    def member(self, i: int) -> "RecConfig":
        """The configuration of an ensemble's i-th model: one model, its own seed."""
        return replace(self, members=1, seed=self.seed + i)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RecConfig":
        """A saved configuration, including the first checkpoint format's (`sasrec_loss`, no id embeddings)."""
        from .registry import model_spec

        data = dict(data)
        spec = model_spec(data.get("model", cls.model))
        if "sasrec_loss" in data:  # the first format: each model's settings of then
            for key, value in spec.first_format(data.pop("sasrec_loss")).items():
                data.setdefault(key, value)
        for key, value in spec.saved_before.items():  # the model's values of settings added since
            data.setdefault(key, value)
        data.setdefault("position_std", 1.0)  # saved before it was a setting: torch's N(0, 1) start
        data.setdefault("members", 1)  # saved before ensembles: one model
        data.setdefault("ema_half_life", 0.0)  # saved before weight averaging: none
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown recommender setting(s): {', '.join(unknown)}")
        return cls(**data)

    def with_settings(self, assignments: list[str]) -> "RecConfig":
        """["dropout=0.3", "loss=sampled"] → a copy with those fields changed (values are JSON, else strings)."""
        changes = parse_assignments(assignments)
        unknown = [key for key in changes if key not in self.__dataclass_fields__]
        if unknown:
            raise ValueError(f"--set {unknown[0]}=...: expected key=value with key one of "
                             f"{', '.join(self.__dataclass_fields__)}")
        current = self.to_dict()
        if changes.get("model", self.model) != self.model:  # another model brings its own defaults
            current.update({key: None for key in PER_MODEL})
        return type(self)(**{**current, **changes})


