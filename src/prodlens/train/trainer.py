"""The training loop: AdamW, warm-up + cosine, gradient clipping, mixed precision on GPU, periodic validation,
atomic best/last checkpoints, exact resume, a JSONL metrics log and a report with plots.

Distributed: run under `torchrun --nproc_per_node N -m prodlens train ...`. Each process takes every N-th group of
the global batch, embeddings are all-gathered with gradients (torch.distributed.nn) so the contrastive loss sees
the whole global batch on every rank, and DistributedDataParallel averages the gradients (gloo on CPU, NCCL on GPU).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..catalog import Catalog, ManifestView
from ..embed import EmbedConfig, FeatureCache, ProductEmbedder
from ..evaluate import evaluate_embeddings
from ..model import RunConfig, create_model, with_encoder_widths
from ..distributed import setup_distributed
from ..progress import console, progress_bar
from ..runs import BEST, LAST, RunDir, config_digest
from .activations import ActivationTable, build_activation_table
from .backbone import FrameSource, TrainingNet, make_backbone, pixel_batches
from ..model.checkpoint import table_embeddings
from ..model.features import FeatureTable, build_feature_table
from .data import Batch, GroupBatcher, batch_rows, collate
from .loss import ProductLoss


def gather(t: torch.Tensor, world: int) -> torch.Tensor:
    """All-gather along dim 0, keeping gradients flowing back to every rank's own rows."""
    if world == 1:
        return t
    import warnings

    import torch.distributed.nn.functional as dist_nn

    with warnings.catch_warnings():  # deprecated in favour of a private API; this one is stable and autograd-aware
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dist_nn.all_gather(t.contiguous()), dim=0)


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


# A resumed run may be given more or less time, or other decoding workers (the pixels do not depend on them);
# everything else must be what the checkpoint was trained with.
RESUMABLE_CHANGES = ("config.train.max_minutes", "config.train.loader_workers")


BACKBONE_MODES = ("partial", "cached", "recompute", "finetune")


@dataclass
class TrainState:
    """Where a run is: what a checkpoint restores."""
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"score": -1.0})


@dataclass
class TrainResult:
    step: int
    total_steps: int
    best: dict  # {"score": mean R@1, "step", "metrics": per-direction metrics} of the best validation
    zero_shot: dict | None  # validation metrics of the zero-shot encoders, before training
    last_metrics: dict | None
    history: list[dict]
    stopped_early: bool
    minutes: float
    steps_per_epoch: int
    world_size: int
    backbone: str
    groups_per_second: float
    samples_per_second: float
    rank: int = 0

    def summary(self) -> dict:
        """Everything but the history, as JSON-ready values."""
        return {k: v for k, v in asdict(self).items() if k != "history"}


@dataclass
class _Session:
    """What one fit trains with (built by Trainer._session)."""
    table: FeatureTable
    val_table: FeatureTable | None
    products: list[str]
    product_index: dict[str, int]
    domains: list[str]
    batcher: GroupBatcher
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    model: torch.nn.Module
    loss_fn: ProductLoss
    backbone: object = None
    depth: int = 0
    source: FrameSource | None = None
    val_source: FrameSource | None = None
    acts: ActivationTable | None = None
    val_acts: ActivationTable | None = None
    trains_backbone: bool = False
    training_net: TrainingNet | None = None
    net: torch.nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object = None
    scaler: object = None
    use_amp: bool = False


@dataclass
class _Clock:
    started: float = field(default_factory=time.time)
    step_seconds: float = 0.0
    groups: int = 0


def mean_r1(metrics: dict[str, dict[str, float]]) -> float:
    return float(np.mean([m["R@1"] for m in metrics.values()])) if metrics else 0.0


class Trainer:
    def __init__(self, run: RunConfig, out_dir: str | Path, cache: FeatureCache | None = None,
                 features: EmbedConfig | None = None, device: str | None = None, progress: bool = True):
        self.run = run
        self.cfg = run.train
        self.out = Path(out_dir)
        self.rank, self.world = setup_distributed()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and self.world > 1:
            self.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.progress = progress and self.rank == 0
        self.features = features or EmbedConfig(image_encoder=run.model.image_encoder,
                                                text_encoder=run.model.text_encoder,
                                                image_size=run.model.image_size,
                                                frames=min(8, run.model.visual.max_frames))
        self.embedder = ProductEmbedder(self.features, cache or FeatureCache(None))
        if self.cfg.backbone not in BACKBONE_MODES:
            raise ValueError(f"train.backbone must be one of {', '.join(BACKBONE_MODES)}, not {self.cfg.backbone!r}")
        # the network's input widths are the encoders' output widths (saved resolved, with the checkpoint)
        encoders = self.embedder.features
        self.run = replace(run, model=with_encoder_widths(run.model, encoders.image_encoder.dim,
                                                          encoders.text_encoder.dim))

    # -- data ---------------------------------------------------------------------------------------------------
    def _tables(self, train: Catalog | ManifestView, val: Catalog | None) -> tuple[FeatureTable, FeatureTable | None]:
        # pooled features of augmented views only feed the `cached` mode; the others augment the backbone's input
        views = self.cfg.augment_views if self.cfg.backbone == "cached" else 1

        # the network never sees the read-text block (it joins its output at inference): the training rows are not
        # read; the validation rows are, so validation scores the model as it will embed
        features = self.embedder.features

        def build():
            t = build_feature_table(train, features.with_config(ocr="none"), self.run.model.visual.max_frames, views,
                                    progress=self.progress, disk_dir=self.out / f"features-rank{self.rank}")
            # validation embeds as inference will; partial / finetune recompute the val features from the backbone,
            # so only the frozen-feature modes need the mirrored pooled features
            flip = self.run.model.flip_tta and self.cfg.backbone in ("cached", "recompute")
            val_features = features.with_config(flip_tta=flip)
            v = (build_feature_table(val, val_features, self.run.model.visual.max_frames, 1, progress=self.progress)
                 if val is not None else None)
            return t, v

        return self._rank0_first(build)

    def _activations(self, table: FeatureTable, val_table: FeatureTable | None, backbone,
                     depth: int) -> tuple[ActivationTable, ActivationTable | None]:
        """Lower-backbone activations of the training rows in `augment_views` looks (and of the validation rows,
        plain), for partial fine-tuning. Rank 0 fills the cache first, as for the features."""
        def build():
            common = dict(backbone=backbone, depth=depth, frames=self.features.frames, cache=self.embedder.cache,
                          progress=self.progress, weights=self.embedder.features.weights()["image"])
            t = build_activation_table(table, views=self.cfg.augment_views,
                                       out_dir=self.out / f"activations-rank{self.rank}", **common)
            flip = self.run.model.flip_tta  # validation embeds as inference will: plain + mirror image averaged
            v = (build_activation_table(val_table, views=2 if flip else 1, mirror=flip,
                                        out_dir=self.out / f"activations-rank{self.rank}-val", **common)
                 if val_table is not None and self.rank == 0 else None)
            return t, v

        return self._rank0_first(build)

    def _rank0_first(self, build):
        """`build()` on rank 0 first, filling the cache; the other ranks then read it instead of computing again."""
        if self.world == 1:
            return build()
        built = build() if self.rank == 0 else None
        dist.barrier()
        return built if self.rank == 0 else build()

    # -- one fit, in steps ----------------------------------------------------------------------------------------
    def fit(self, train: Catalog | ManifestView, val: Catalog | None = None, resume: bool = False,
            max_steps: int | None = None) -> TrainResult:
        """Train on `train` (a catalogue in memory, or a manifest streamed batch by batch into the feature table),
        validate on `val`."""
        self.out.mkdir(parents=True, exist_ok=True)
        session = self._session(train, val)
        run = RunDir(self.out, writer=self.rank == 0)
        state = self._resume(session, run, resume)
        if self.rank == 0 and val is not None and not any(h.get("zero_shot") for h in state.history):
            zs = self.embedder.embed_catalog(val, progress=False)
            state.history.append({"step": state.step, "zero_shot": evaluate_embeddings(zs).metrics(),
                                  "model": zs.meta["model"]})
        clock = _Clock()
        stopped_early = self._train(session, state, run, clock, max_steps)
        if state.step % session.eval_every != 0 and state.step != session.total_steps:
            self._validate(session, state, run)
        self._checkpoint(session, state, run, LAST)
        if state.best["score"] < 0:  # no validation split: the last model is the best we know
            state.best = {"score": 0.0, "step": state.step, "metrics": {}}
            self._checkpoint(session, state, run, BEST)
        if self.world > 1:
            dist.barrier()
        groups_per_second = clock.groups / clock.step_seconds if clock.step_seconds else 0.0
        return TrainResult(
            step=state.step, total_steps=session.total_steps, best=state.best, history=state.history,
            zero_shot=next((h["zero_shot"] for h in state.history if h.get("zero_shot")), None),
            last_metrics=next((h["eval"] for h in reversed(state.history) if "eval" in h), None),
            stopped_early=stopped_early, minutes=(time.time() - clock.started) / 60,
            steps_per_epoch=session.steps_per_epoch, world_size=self.world, backbone=self.cfg.backbone,
            groups_per_second=groups_per_second, samples_per_second=groups_per_second * len(session.domains),
            rank=self.rank)

    def _session(self, train: Catalog | ManifestView, val: Catalog | None) -> _Session:
        """Everything one fit trains with: feature tables, batches, the network, backbone, optimizer, schedule."""
        cfg = self.cfg
        table, val_table = self._tables(train, val)
        products = sorted(set(table.product_ids))
        domains = sorted(set(table.domains))
        batcher = GroupBatcher(table.product_ids, table.domains, cfg.batch_products, cfg.samples_per_product, cfg.seed)
        if not batcher.anchors:
            raise ValueError("no product appears in two domains: nothing to train cross-domain")
        steps_per_epoch = len(batcher)
        total_steps = cfg.epochs * steps_per_epoch
        torch.manual_seed(cfg.seed)
        model = create_model(self.run.model).to(self.device)
        loss_fn = ProductLoss(cfg, self.run.model.embed_dim, len(products)).to(self.device)
        s = _Session(table=table, val_table=val_table, products=products,
                     product_index={p: i for i, p in enumerate(products)}, domains=domains, batcher=batcher,
                     steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                     eval_every=cfg.eval_every or steps_per_epoch, model=model, loss_fn=loss_fn)
        if cfg.backbone != "cached":
            s.backbone = make_backbone(self.embedder.features.torch_image_encoder, self.device)
            s.depth = {"partial": cfg.trainable_blocks, "finetune": s.backbone.blocks}.get(cfg.backbone, 0)
            s.backbone.check_depth(s.depth)
        if cfg.backbone == "partial":
            s.acts, s.val_acts = self._activations(table, val_table, s.backbone, s.depth)
        elif s.backbone is not None:
            max_frames = self.run.model.visual.max_frames
            s.source = FrameSource(table, self.features.frames, max_frames, s.backbone.image_size)
            if cfg.backbone == "finetune" and val_table is not None and self.rank == 0:
                s.val_source = FrameSource(val_table, self.features.frames, max_frames, s.backbone.image_size)
        s.trains_backbone = cfg.backbone in ("partial", "finetune")
        s.training_net = TrainingNet(model, s.backbone, s.depth, trainable=s.trains_backbone,
                                     feature_dropout=cfg.feature_dropout).to(self.device)
        s.optimizer = torch.optim.AdamW(self._param_groups(s), lr=cfg.lr)
        s.scheduler = torch.optim.lr_scheduler.LambdaLR(s.optimizer,
                                                        lambda step: lr_factor(step, cfg.warmup_steps, total_steps))
        s.use_amp = cfg.mixed_precision and self.device.startswith("cuda")
        s.scaler = torch.amp.GradScaler("cuda", enabled=s.use_amp)
        # adapters of domains this catalogue lacks get no gradient; DDP must be told to expect that
        s.net = (DistributedDataParallel(s.training_net, find_unused_parameters=len(domains) < 3)
                 if self.world > 1 else s.training_net)
        return s

    def _param_groups(self, s: _Session) -> list[dict]:
        cfg = self.cfg
        params = [p for p in list(s.model.parameters()) + list(s.loss_fn.parameters()) if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        if s.trains_backbone:  # its own (lower) learning rate, under the same warm-up + cosine schedule
            top = s.backbone.top_parameters(s.depth)
            groups += [{"params": [p for p in top if p.ndim >= 2], "weight_decay": cfg.weight_decay,
                        "lr": cfg.backbone_lr},
                       {"params": [p for p in top if p.ndim < 2], "weight_decay": 0.0, "lr": cfg.backbone_lr}]
        return groups

    def _identity(self, s: _Session) -> dict:
        """What a resumed run must share with the checkpoint it continues."""
        return {"config": self.run.to_dict(), "features": asdict(self.features), "products": config_digest(s.products)}

    def _resume(self, s: _Session, run: RunDir, resume: bool) -> TrainState:
        saved = run.start(resume, self._identity(s), ignore=RESUMABLE_CHANGES)
        if saved is None:
            return TrainState()
        s.model.load_state_dict(saved["model"])
        if s.backbone is not None and "backbone" in saved:
            s.backbone.network().load_state_dict(saved["backbone"])
        s.loss_fn.load_state_dict(saved["loss"])
        s.optimizer.load_state_dict(saved["optimizer"])
        s.scheduler.load_state_dict(saved["scheduler"])
        if self.rank == 0:
            console.print(f"resuming from {self.out / LAST} at step {saved['step']}/{s.total_steps}")
        return TrainState(saved["step"], saved["history"], saved["best"])

    def _checkpoint(self, s: _Session, state: TrainState, run: RunDir, name: str) -> None:
        checkpoint = {"model": s.model.state_dict(), "loss": s.loss_fn.state_dict(),
                      "optimizer": s.optimizer.state_dict(), "scheduler": s.scheduler.state_dict(),
                      "step": state.step, "history": state.history, "best": state.best, "config": self.run.to_dict(),
                      "features": asdict(self.features), "products": s.products, "total_steps": s.total_steps}
        if s.trains_backbone:
            checkpoint["backbone"] = s.backbone.network().state_dict()
        run.save(name, checkpoint, identity=self._identity(s))

    def _validate(self, s: _Session, state: TrainState, run: RunDir) -> None:
        if self.rank != 0 or s.val_table is None:
            return
        eval_table = s.val_table
        if s.val_source is not None:  # the backbone changed: recompute the validation features with it
            eval_table = replace(s.val_table, frames=backbone_features(s.backbone, s.val_source, s.val_table,
                                                                       self.device, self.cfg.loader_workers,
                                                                       flip=self.run.model.flip_tta))
        elif s.val_acts is not None:
            eval_table = replace(s.val_table, frames=activation_features(s.backbone, s.depth, s.val_acts, s.val_table,
                                                                         self.device))
        metrics = evaluate_embeddings(table_embeddings(s.model, eval_table, {"model": "trained"}, self.device,
                                                       self.features.read_weight)).metrics()
        score = mean_r1(metrics)
        row = {"step": state.step, "epoch": state.step / s.steps_per_epoch, "eval": metrics, "mean_R@1": score}
        state.history.append(row)
        run.log(row)
        if score > state.best["score"]:
            state.best = {"score": score, "step": state.step, "metrics": metrics}
            self._checkpoint(s, state, run, BEST)
        s.model.train()

    def _train(self, s: _Session, state: TrainState, run: RunDir, clock: "_Clock", max_steps: int | None) -> bool:
        """Steps until the schedule ends; True when stopped early (max_steps, max_minutes)."""
        cfg = self.cfg
        with progress_bar(s.total_steps - state.step, "training", enabled=self.progress) as advance:
            while state.step < s.total_steps:
                epoch, offset = divmod(state.step, s.steps_per_epoch)
                batches = s.batcher.epoch(epoch)[offset:]
                s.training_net.train()
                pixels = None
                if s.source is not None:  # decoded by DataLoader workers, ahead of the step that needs them
                    plan = [batch_rows(self._local(groups)) if self._contrastive(groups) else [] for groups in batches]
                    pixels = pixel_batches(s.source, plan,
                                           [cfg.seed * 7_919_993 + state.step + i for i in range(len(plan))],
                                           train=True, workers=cfg.loader_workers)
                for groups in batches:
                    if max_steps is not None and state.step >= max_steps:
                        return True
                    t0 = time.perf_counter()
                    parts = self._step(s, groups, state.step, next(pixels) if pixels is not None else None)
                    clock.step_seconds += time.perf_counter() - t0
                    clock.groups += len(groups)
                    s.scheduler.step()
                    state.step += 1
                    advance(1)
                    if self.rank == 0 and parts is not None and (state.step % 10 == 0 or state.step == 1):
                        row = {"step": state.step, "epoch": state.step / s.steps_per_epoch,
                               "lr": s.scheduler.get_last_lr()[0],
                               "temperature": float(1 / s.loss_fn.scale.detach()), **parts}
                        state.history.append(row)
                        run.log(row)
                    if state.step % s.eval_every == 0 or state.step == s.total_steps:
                        self._validate(s, state, run)
                        self._checkpoint(s, state, run, LAST)
                    if cfg.max_minutes and (time.time() - clock.started) / 60 > cfg.max_minutes:
                        return True
        return False

    def _contrastive(self, groups) -> bool:
        """Enough groups to contrast, and to give every rank one; the same answer on every rank."""
        return len(groups) >= max(2, self.world)

    def _local(self, groups):
        """This rank's share of a batch: every world-th group (as DistributedSampler interleaves), padded with empty
        groups (masked) so every rank's tensors have the same shape for all_gather."""
        per_rank = -(-len(groups) // self.world)
        local = groups[self.rank::self.world]
        return local + [{}] * (per_rank - len(local))

    def _step(self, s: _Session, groups: list[dict], step: int, pixels: torch.Tensor | None = None) -> dict | None:
        """One optimizer step on a batch of product groups; the loss parts, or None for a batch too small."""
        if not self._contrastive(groups):
            return None
        table, acts, domains, loss_fn, optimizer, scaler = s.table, s.acts, s.domains, s.loss_fn, s.optimizer, s.scaler
        local = self._local(groups)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        torch.manual_seed(self.cfg.seed * 7919 + step * 31 + self.rank)  # dropout, reproducible across resumes
        batch: Batch = collate(table, local, s.product_index, domains, train=True, generator=gen,
                               frame_dropout=self.cfg.frame_dropout, text_dropout=self.cfg.text_dropout)
        dev = self.device
        pixels = pixels.to(dev) if pixels is not None else None
        step_acts = None
        if acts is not None:  # each sample in one of its cached looks
            views = torch.randint(0, acts.views, (len(batch.rows),), generator=gen)
            step_acts = acts.batch(batch.rows, batch.frame_mask, views).to(dev)
        frames = F.dropout(batch.frames.to(dev), self.cfg.feature_dropout, training=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=s.use_amp):
            out = s.net(frames, batch.frame_mask.to(dev), batch.text.to(dev), batch.has_text.to(dev),
                      batch.domain.to(dev), pixels, step_acts)
        outputs = {}
        for d in domains:
            rows = batch.rows_by_domain[d].to(dev)
            valid = rows >= 0
            sel = rows.clamp(min=0)
            entry = {"valid": valid}
            for key in ("embedding", "visual", "text"):
                if key in out:
                    entry[key] = out[key][sel].float() * valid[:, None]
            entry["has_visual"] = out["has_visual"][sel] & valid
            entry["has_text"] = out["has_text"][sel] & valid
            outputs[d] = {k: (gather(v, self.world) if v.dtype.is_floating_point
                              else gather(v.long(), self.world).bool()) for k, v in entry.items()}
        labels = gather(batch.labels.to(dev), self.world).clamp(min=0)
        loss, parts = loss_fn(outputs, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], self.cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return {k: float(v.detach()) for k, v in parts.items()}


@torch.inference_mode()
def backbone_features(backbone, source: FrameSource, table: FeatureTable, device: str, workers: int = 0,
                      batch: int = 64, flip: bool = False) -> torch.Tensor:
    """(N, 1, F, D) features of the table's samples computed by `backbone` from centre-cropped pixels (with `flip`,
    averaged with the mirrored pixels')."""
    backbone.eval()
    out = torch.zeros((len(table), 1) + tuple(table.frames.shape[2:]), dtype=torch.float32)
    steps = [list(range(start, min(start + batch, len(table)))) for start in range(0, len(table), batch)]
    for rows, px in zip(steps, pixel_batches(source, steps, [0] * len(steps), train=False, workers=workers)):
        rows = torch.tensor(rows)
        mask = table.frame_mask[rows]
        px = px.to(device)[mask.to(device)]
        feats = backbone(px).float().cpu()
        if flip:
            feats = (feats + backbone(px.flip(-1)).float().cpu()) / 2
        block = torch.zeros((len(rows),) + tuple(table.frames.shape[2:]))
        block[mask] = feats
        out[rows, 0] = block
    backbone.train()
    return out


@torch.inference_mode()
def activation_features(backbone, depth: int, acts: ActivationTable, table: FeatureTable, device: str,
                        batch: int = 128) -> torch.Tensor:
    """(N, 1, F, D) features of the table's samples: the backbone's current top blocks over their cached
    activations, averaged over the looks cached (the plain view, and its mirror image for flip averaging)."""
    backbone.eval()
    out = torch.zeros((len(table), 1) + tuple(table.frames.shape[2:]), dtype=torch.float32)
    for start in range(0, len(table), batch):
        rows = torch.arange(start, min(start + batch, len(table)))
        mask = table.frame_mask[rows]
        if not mask.any():
            continue
        feats = sum(backbone.upper(acts.batch(rows, mask, torch.full((len(rows),), v)).to(device), depth).float()
                    for v in range(acts.views)).cpu() / acts.views
        block = torch.zeros((len(rows),) + tuple(table.frames.shape[2:]))
        block[mask] = feats
        out[rows, 0] = block
    backbone.train()
    return out
