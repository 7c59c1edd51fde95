"""Typed model and training configuration, read from small JSON files (open_clip style).

A config file holds {"model": {...}, "train": {...}}; unknown keys are errors, missing keys take the defaults
below, which are the one source of every default (the packaged `default` config is empty). Packaged configs live
in `prodlens/model/configs/` and are named without `.json` (e.g. `default`, `tiny`, `hf-finetune`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ProdlensError
from ..specs import parse_assignments


@dataclass
class VisualConfig:
    aggregator: str = "transformer"  # "mean" or "transformer" (COPE's multi-frame integration)
    layers: int = 1
    heads: int = 4
    max_frames: int = 16


@dataclass
class FusionConfig:
    kind: str = "mlp"  # "mlp" (concat → MLP) or "attention" (a transformer layer over [visual, text] tokens)
    hidden: int = 512
    dropout: float = 0.1


@dataclass
class ModelConfig:
    image_encoder: str = "efficientnet-lite0"  # backbone spec (see prodlens.encoders)
    text_encoder: str = "minilm"
    image_size: int = 224  # input side of the image encoder (EfficientNet-Lite0; hf: models use their processor's)
    flip_tta: bool = True  # inference (and validation): each image's features averaged with its mirror image's
    image_feature_dim: int | None = None  # the image encoder's output width; None = read from the encoder
    text_feature_dim: int | None = None  # the text encoder's output width; None = read from the encoder
    width: int = 256  # branch width
    embed_dim: int = 128  # the compact product embedding
    visual: VisualConfig = field(default_factory=VisualConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    domain_adapters: bool = True  # per-domain residual adapters after fusion (zero-initialised)
    text_source: str = "text"  # "text" (title/description/ASR), "none" (visual only)
    branch_heads: bool = True  # project visual / text branches into the embedding space too (AMPere terms)


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_products: int = 64  # products per batch (P)
    samples_per_product: int = 2  # anchors per product per batch (K)
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    grad_clip: float = 1.0
    temperature: float = 0.05  # COPE uses 0.05
    learn_temperature: bool = True
    label_smoothing: float = 0.1
    pair_weights: dict[str, float] = field(default_factory=lambda: {"default": 1.0})  # e.g. {"page-live": 2.0}
    same_modality_weight: float = 0.25  # AMPere: visual↔visual across domains
    cross_modality_weight: float = 0.25  # AMPere: visual of one domain ↔ text of another
    classifier: str = "cosface"  # "cosface", "arcface" or "none"
    classifier_scale: float = 64.0  # COPE: s=64
    classifier_margin: float = 0.4  # COPE: m=0.4
    classifier_weight: float = 1.0
    feature_dropout: float = 0.1  # drops backbone feature dims (cheap augmentation on cached features)
    frame_dropout: float = 0.25  # drops whole frames of a clip during training
    text_dropout: float = 0.3  # drops the text of a sample (so the model copes with silent clips / no titles)
    augment_views: int = 6  # looks per training image cached (view 0 plain, the others random crop / mirror /
    #                         colour jitter): backbone activations (`partial`) or pooled features (`cached`)
    eval_every: int = 100  # steps between validation runs (0: once per epoch)
    backbone: str = "partial"  # "partial" (the top `trainable_blocks` of the image backbone trained on cached
    #                            lower activations of `augment_views` looks per image: the CPU default), "cached"
    #                            (frozen, pooled features cached), "recompute" (frozen, augmented pixels every
    #                            step), "finetune" (the whole image backbone trained from pixels: for GPUs)
    trainable_blocks: int = 5  # top backbone blocks trained (EfficientNet MBConv blocks / transformer layers)
    backbone_lr: float = 3e-4  # learning rate of the backbone's trained blocks (COPE fine-tunes at lr / 500)
    loader_workers: int = 1  # DataLoader processes decoding frames ahead of the step (backbone modes; 0: inline)
    seed: int = 0
    mixed_precision: bool = True  # fp16 autocast on CUDA; ignored on CPU
    max_minutes: float | None = None  # stop (with a checkpoint) after this much time


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)


def with_encoder_widths(model: ModelConfig, image_dim: int, text_dim: int) -> ModelConfig:
    """`model` with its input widths read from the encoders; a width a config sets explicitly must agree."""
    for name, set_to, actual in (("image_feature_dim", model.image_feature_dim, image_dim),
                                 ("text_feature_dim", model.text_feature_dim, text_dim)):
        if set_to is not None and set_to != actual:
            encoder = model.image_encoder if name.startswith("image") else model.text_encoder
            raise ProdlensError(f"model.{name} = {set_to}, but the encoder {encoder!r} outputs {actual}-d features; "
                                "leave it unset to take the encoder's width")
    return replace(model, image_feature_dim=image_dim, text_feature_dim=text_dim)


def _build(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise ProdlensError(f"config section {where!r} must be an object")
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ProdlensError(f"unknown config key(s) in {where!r}: {', '.join(sorted(unknown))}")
    kwargs = {}
    defaults = cls()
    for name, value in data.items():
        current = getattr(defaults, name)
        kwargs[name] = _build(type(current), value, f"{where}.{name}") if is_dataclass(current) else value
    return cls(**kwargs)


def parse_overrides(assignments: list[str]) -> dict:
    """["train.lr=3e-4", "model.visual.layers=2"] → {"train": {"lr": 0.0003}, "model": {"visual": {"layers": 2}}}
    (`prodlens.specs.parse_assignments`); every key names a section. Names are checked when the config is built."""
    try:
        out = parse_assignments(assignments)
    except ValueError as e:
        raise ProdlensError(str(e)) from None
    flat = [key for key, value in out.items() if not isinstance(value, dict)]
    if flat:
        raise ProdlensError(f"--set {flat[0]}=...: expected section.key=value, e.g. train.lr=3e-4")
    return out


def _merge(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def run_config_from_dict(data: dict) -> RunConfig:
    return _build(RunConfig, data, "config")


def packaged_configs() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("prodlens.model").joinpath("configs").iterdir()
                  if p.name.endswith(".json"))


def load_run_config(name_or_path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """A packaged config by name (`default`), or a JSON file by path; `overrides` = {"train": {"epochs": 3}, ...}."""
    name_or_path = str(name_or_path or "default")
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise ProdlensError(f"config file {path} not found")
        text = path.read_text(encoding="utf-8")
    else:
        res = resources.files("prodlens.model").joinpath("configs", f"{name_or_path}.json")
        if not res.is_file():
            raise ProdlensError(f"no packaged config {name_or_path!r}; packaged: {', '.join(packaged_configs())}")
        text = res.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProdlensError(f"config {name_or_path} is not valid JSON: {e}") from None
    return run_config_from_dict(_merge(data, overrides or {}))
