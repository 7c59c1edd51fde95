"""Partial fine-tuning's input: the frozen lower part of the image backbone, run once per frame and view.

Every frame of every sample is seen in `views` looks — view 0 the plain centre crop, views 1.. random crops
(scale 0.64–1), flips and colour jitter drawn from a seed of (frame content, view) — and each look goes through
the backbone's frozen lower part once. The activations are stored in the feature cache (keyed like the features:
content hash of the sample's media, frame count, view, backbone and split), so a second run, or an evaluation of
the same split, decodes nothing; the run reads them from a float16 array memory-mapped in its directory, so
memory stays bounded by the batch. Training then runs only the top blocks (`TunableBackbone.upper`) every step.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ImageOps

from ..catalog import Sample
from ..cache import FeatureCache
from ..cache import model_key as cache_model_key
from ..embed.embedder import load_sample_frames, media_key
from ..encoders.tunable import TunableBackbone, pixels_of
from ..errors import ProdlensError, RecordError
from ..media import random_view
from ..model.features import FeatureTable
from ..progress import progress_bar

log = logging.getLogger(__name__)

AUGMENTATION = "rrc0.64-flip-jitter0.3"  # part of the cache key: other augmentations are other activations
MIRROR = "mirror"  # views=2 with mirror=True: view 1 is the plain view's mirror image (test-time flip averaging)


@dataclass
class ActivationTable:
    acts: torch.Tensor  # (M, V, *activation shape) float16, memory-mapped
    frame_rows: torch.Tensor  # (N, F) row of acts holding frame f of FeatureTable row i, -1 where there is none

    @property
    def views(self) -> int:
        return int(self.acts.shape[1])

    def batch(self, rows: torch.Tensor, frame_mask: torch.Tensor, views: torch.Tensor | None = None) -> torch.Tensor:
        """Activations of the present frames (`frame_mask`, (n, F)) of table rows `rows`, in row-major order (the
        order of `pixels[frame_mask]`), each sample in its view `views[i]` (default: the plain view)."""
        picked = self.frame_rows[rows]  # (n, F)
        views = torch.zeros(len(rows), dtype=torch.long) if views is None else views
        per_frame_view = views[:, None].expand_as(picked)[frame_mask]
        index = picked[frame_mask]
        if (index < 0).any():
            raise ValueError("a frame marked present has no activations")
        return self.acts[index.numpy(), per_frame_view.numpy()].float()


def activation_key(root: Path, media: Sample, frames: int, view: int, mirror: bool = False) -> str:
    look = () if view == 0 else (MIRROR if mirror else AUGMENTATION,)  # view 0 is the plain look, whatever else
    return media_key(root, media, frames, f"view{view}", *look)


def build_activation_table(table: FeatureTable, backbone: TunableBackbone, depth: int, views: int, frames: int,
                           cache: FeatureCache, out_dir: Path, progress: bool = True, batch: int = 32,
                           mirror: bool = False, weights: str | None = None) -> ActivationTable:
    """Lower-backbone activations of every frame of `table` in `views` looks, from the cache where possible,
    written to `out_dir/activations.npy`; with `mirror` (and views = 2) the second look is the plain view's mirror
    image instead of a random one. A sample whose media cannot be decoded any more keeps no activations,
    and its frames are dropped from the table's frame mask (it then trains on its text only). `weights`: the digest
    of the pretrained weights the frozen blocks hold (part of the cache key)."""
    if mirror and views != 2:
        raise ValueError("mirror=True takes views=2: the plain view and its mirror image")
    model_key = cache_model_key(f"activations:{backbone.name}", blocks=backbone.blocks - backbone.check_depth(depth),
                                weights=weights, augmentation=AUGMENTATION)
    n, max_frames = table.frame_mask.shape
    frame_rows = torch.full((n, max_frames), -1, dtype=torch.long)
    counts = table.frame_mask.sum(dim=1)
    starts = torch.cumsum(counts, 0) - counts
    for i in range(n):
        frame_rows[i, : counts[i]] = starts[i] + torch.arange(int(counts[i]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        probe = torch.zeros(1, 3, backbone.image_size, backbone.image_size, dtype=torch.uint8)
        shape = tuple(backbone.lower(backbone.normalize(probe.to(next(backbone.parameters()).device)),
                                     depth).shape[1:])
    need = int(counts.sum()) * views * int(np.prod(shape)) * 2
    free = shutil.disk_usage(out_dir).free
    if need > free:  # refuse up front rather than fill the disk hours in
        raise ProdlensError(
            f"partial fine-tuning needs {need / 1e9:.1f} GB of float16 activations ({int(counts.sum())} frames x "
            f"{views} views x {shape}) in {out_dir}, which has {free / 1e9:.1f} GB free (the feature cache keeps a "
            "copy too); use fewer train.augment_views, train.backbone = finetune on GPUs, or train.backbone = cached")
    acts = _allocate(out_dir / "activations.npy", int(counts.sum()), views, shape)
    todo = [i for i in range(n) if counts[i] > 0]
    chunks = [todo[s:s + batch] for s in range(0, len(todo), batch)]
    backbone.eval()
    lower, _ = lower_runner(backbone, depth, weights)
    with progress_bar(len(todo) * views, "backbone activations", enabled=progress) as advance, \
            cf.ThreadPoolExecutor(max_workers=1) as pool:
        for view in range(views):
            decode = (table, frames, view, model_key, cache, mirror)
            pending = pool.submit(_decode, chunks[0], *decode) if chunks else None
            for c in range(len(chunks)):
                decoded = pending.result()
                if c + 1 < len(chunks):  # decode the next chunk while this one runs through the network
                    pending = pool.submit(_decode, chunks[c + 1], *decode)
                computed = _run_lower(lower, backbone.image_size, decoded)
                if computed:
                    cache.put_many(model_key, "activations", {key: value for key, value in computed.values()})
                for row, found in decoded.items():
                    value = found.cached if found.cached is not None else computed.get(row, (None, None))[1]
                    if value is None:  # undecodable now: no pixels for this sample
                        table.frame_mask[row] = False
                        frame_rows[row] = -1
                        continue
                    k = min(len(value), int(counts[row]))
                    acts[frame_rows[row, :k].numpy(), view] = value[:k]
                    if k < counts[row]:
                        table.frame_mask[row, k:] = False
                        frame_rows[row, k:] = -1
                advance(len(decoded))
    if isinstance(acts, np.memmap):
        acts.flush()
    return ActivationTable(torch.from_numpy(np.asarray(acts)), frame_rows)


@dataclass
class _Decoded:
    key: str
    cached: np.ndarray | None = None
    pixels: list | None = None  # the decoded (augmented) frames, PIL images, when not cached


def _decode(rows: list[int], table: FeatureTable, frames: int, view: int, model_key: str,
            cache: FeatureCache, mirror: bool = False) -> dict[int, _Decoded]:
    keys, media = {}, {}
    for row in rows:
        media[row] = table.media_row(row)
        try:
            keys[row] = activation_key(table.root, media[row], frames, view, mirror)
        except (RecordError, OSError):
            continue  # the media went missing since the table was built: no activations
    found = cache.get_many(model_key, "activations", list(set(keys.values())))
    out: dict[int, _Decoded] = {}
    for row, key in keys.items():
        if key in found:
            out[row] = _Decoded(key, cached=found[key])
            continue
        try:
            images = load_sample_frames(table.root, media[row], frames)
        except RecordError:
            continue
        if view and mirror:
            images = [ImageOps.mirror(img) for img in images]
        elif view:
            rng = np.random.default_rng([int(key[:12], 16), view])
            images = [random_view(img, rng) for img in images]
        out[row] = _Decoded(key, pixels=images)
    return out


def lower_runner(backbone: TunableBackbone, depth: int, weights: str | None):
    """(uint8 pixels (B, 3, S, S) → float16 activations of the frozen lower part, its runtime): ONNX Runtime on CPU
    when the backbone exports it and its pretrained weights are named (EfficientNet: ~4x torch eager; the same
    activations to float16), else torch."""
    device = next(backbone.parameters()).device
    if device.type == "cpu" and hasattr(backbone, "lower_module") and weights:
        from ..encoders.onnx import OnnxModule

        example = torch.zeros(2, 3, backbone.image_size, backbone.image_size, dtype=torch.uint8)
        try:
            module = OnnxModule(backbone.lower_module(depth), example,
                                f"lower:{backbone.name}#{weights}@{backbone.image_size}/depth{depth}")
            return (lambda pixels: module(pixels.numpy()).astype(np.float16)), "onnx"
        except Exception as e:  # noqa: BLE001 - an exporter failure has many types; torch still answers
            log.warning("the activation pass runs in torch: its ONNX export failed (%s: %s)", type(e).__name__, e)

    @torch.inference_mode()
    def run(pixels: torch.Tensor) -> np.ndarray:
        return backbone.lower(backbone.normalize(pixels.to(device)), depth).to(torch.float16).cpu().numpy()

    return run, "torch"


def _run_lower(lower, image_size: int, decoded: dict[int, _Decoded]) -> dict[int, tuple]:
    rows = [r for r, d in decoded.items() if d.cached is None]
    if not rows:
        return {}
    images = [img for r in rows for img in decoded[r].pixels]
    acts = lower(pixels_of(images, image_size))
    out, start = {}, 0
    for r in rows:
        k = len(decoded[r].pixels)
        out[r] = (decoded[r].key, acts[start:start + k])
        start += k
    return out


def _allocate(path: Path, frames: int, views: int, shape: tuple) -> np.ndarray:
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(frames, views) + tuple(shape))
