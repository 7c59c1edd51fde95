"""Image encoders as trainable modules, split by depth into a frozen lower part and trainable top blocks.

`tunable_backbone(encoder)` wraps the network an image encoder already loaded (EfficientNet-Lite0, or a
transformers vision model: ViT, DINOv2, CLIP / SigLIP vision towers...) as one `TunableBackbone`:

    pixels (B, 3, S, S) uint8  →  normalize  →  lower(·, depth)  →  activations  →  upper(·, depth)  →  (B, dim)

`upper(lower(x, depth), depth)` equals the encoder's own features for every depth, so a model trained on the
pretrained features starts where they were. `depth` counts the top blocks that are trained (EfficientNet: MBConv
blocks, plus the head convolution that is always trained; transformers: encoder layers, plus the final norm,
pooler and projection). `depth = blocks` is full fine-tuning. Partial fine-tuning caches `lower` once per image
view and trains `upper` alone, which is what makes it affordable on a CPU.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ProdlensError


class TunableBackbone(nn.Module):
    dim: int  # width of the pooled features
    image_size: int  # side of the square input
    blocks: int  # how many blocks `depth` can count

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) pixels (B, 3, S, S) → the network's input."""
        raise NotImplementedError

    def lower(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        raise NotImplementedError

    def upper(self, acts: torch.Tensor, depth: int) -> torch.Tensor:
        raise NotImplementedError

    def top_parameters(self, depth: int) -> list[nn.Parameter]:
        raise NotImplementedError

    def network(self) -> nn.Module:
        """The encoder's own network (what a checkpoint stores and `encoder.model.load_state_dict` reads)."""
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        depth = self.blocks if depth is None else depth
        x = self.normalize(pixels)
        with torch.set_grad_enabled(torch.is_grad_enabled() and depth >= self.blocks):
            acts = self.lower(x, depth)
        return self.upper(acts, depth)

    def check_depth(self, depth: int) -> int:
        if not 0 <= depth <= self.blocks:
            raise ProdlensError(f"{self.name}: trainable depth must be between 0 and {self.blocks}, not {depth}")
        return depth

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():  # batch statistics of small batches would undo the pretrained ones
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self


class EfficientNetBackbone(TunableBackbone):
    """EfficientNet-Lite0: stem + MBConv blocks[:16 - depth] frozen; blocks[16 - depth:] + head conv trained."""

    def __init__(self, encoder, drop_connect: float = 0.2):
        super().__init__()
        self.net = encoder.model
        self.name = encoder.name
        self.dim = encoder.dim
        self.image_size = encoder.image_size
        self.blocks = len(self.net._blocks)
        self.drop_connect = drop_connect

    def network(self) -> nn.Module:
        return self.net

    def lower_module(self, depth: int) -> nn.Module:
        """uint8 pixels → the frozen lower part's activations, as one module (for export to ONNX Runtime: the
        activation pass of partial fine-tuning runs it once per frame and view)."""
        return _Lower(self, depth)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 127.5 - 1.0  # EfficientNet-Lite expects inputs in [-1, 1]
        return x.contiguous(memory_format=torch.channels_last)  # as EfficientNetLite0 holds its weights

    def lower(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self.blocks - self.check_depth(depth)]:
            x = block(x)
        return x

    def upper(self, acts: torch.Tensor, depth: int) -> torch.Tensor:
        net, first = self.net, self.blocks - self.check_depth(depth)
        x = acts.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(net._blocks[first:], start=first):
            # stochastic depth as the network was trained with it (scaled by position), only while training
            x = block(x, drop_connect_rate=self.drop_connect * i / self.blocks if self.training else None)
        x = net._swish(net._bn1(net._conv_head(x)))
        return x.mean(dim=(2, 3))

    def top_parameters(self, depth: int) -> list[nn.Parameter]:
        net, first = self.net, self.blocks - self.check_depth(depth)
        params = [p for b in net._blocks[first:] for p in b.parameters()]
        if depth >= self.blocks:
            params += [*net._conv_stem.parameters(), *net._bn0.parameters()]
        return params + [*net._conv_head.parameters(), *net._bn1.parameters()]


class _Stop(Exception):
    pass


class _PassThrough(nn.Module):
    """Stands in for a frozen layer while the cached activations are fed in above it."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class TransformersBackbone(TunableBackbone):
    """A transformers vision model (ViT, DINOv2, CLIP / SigLIP vision towers, ...): embeddings + encoder layers
    [:L - depth] frozen; layers [L - depth:] + final norm / pooler / projection trained.

    The split works through the model's own forward (its pooling and projection stay exactly as the encoder
    computes them): `lower` stops it at the input of layer L - depth; `upper` runs it with the layers below the
    split passed through and their output replaced by the cached activations."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.model = encoder.model
        self.name = encoder.name
        self.dim = encoder.dim
        self.layers = _layer_list(self.model)
        self.blocks = len(self.layers)
        processor = encoder.processor
        self.image_size = _processor_side(processor)
        mean = getattr(processor, "image_mean", None) or [0.5, 0.5, 0.5]
        std = getattr(processor, "image_std", None) or [0.5, 0.5, 0.5]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255, persistent=False)

    def network(self) -> nn.Module:
        return self.model

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.float() - self.mean) / self.std

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.features_from_pixels(x)

    def lower(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        split = self.blocks - self.check_depth(depth)
        if split == self.blocks:  # nothing trained below the head: stop after the last layer
            return self._run_capturing_output(x)
        captured = {}

        def stop(module, args, kwargs):
            captured["h"] = args[0] if args else kwargs["hidden_states"]
            raise _Stop

        handle = self.layers[split].register_forward_pre_hook(stop, with_kwargs=True)
        try:
            self._features(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        return captured["h"]

    def _run_capturing_output(self, x: torch.Tensor) -> torch.Tensor:
        captured = {}

        def keep(module, args, output):
            captured["h"] = output[0] if isinstance(output, tuple) else output

        handle = self.layers[-1].register_forward_hook(keep)
        try:
            self._features(x)
        finally:
            handle.remove()
        return captured["h"]

    def upper(self, acts: torch.Tensor, depth: int) -> torch.Tensor:
        split = self.blocks - self.check_depth(depth)
        originals = list(self.layers)
        target = split if split < self.blocks else None

        def feed(module, args, kwargs):
            if args:
                return (acts,) + tuple(args[1:]), kwargs
            return args, {**kwargs, "hidden_states": acts}

        def replace_output(module, args, output):
            return (acts,) + tuple(output[1:]) if isinstance(output, tuple) else acts

        for i in range(split):
            self.layers[i] = _PassThrough()
        if target is not None:
            handle = self.layers[target].register_forward_pre_hook(feed, with_kwargs=True)
        else:
            handle = self.layers[-1].register_forward_hook(replace_output)
        # The embeddings still run on a blank image of the right shape (cheap next to the layers); their output
        # is discarded where the activations come in.
        blank = torch.zeros((acts.shape[0], 3, self.image_size, self.image_size), device=acts.device)
        try:
            return self._features(blank)
        finally:
            handle.remove()
            for i in range(split):
                self.layers[i] = originals[i]

    def top_parameters(self, depth: int) -> list[nn.Parameter]:
        split = self.blocks - self.check_depth(depth)
        if split == 0:
            return list(self.model.parameters())
        below = {id(p) for layer in self.layers[:split] for p in layer.parameters()}
        below |= {id(p) for p in _embeddings(self.model).parameters()}
        layer_params = {id(p) for layer in self.layers for p in layer.parameters()}
        tower = _vision_tower(self.model)
        # the tower's parameters outside its layers (final norm, pooler, ...), and a dual encoder's image projection
        outside = [p for p in tower.parameters() if id(p) not in below and id(p) not in layer_params]
        if tower is not self.model:
            outside += [p for name, p in self.model.named_parameters() if name.startswith("visual_projection")]
        return [p for layer in self.layers[split:] for p in layer.parameters()] + outside


def _processor_side(processor) -> int:
    """The side of the square the processor feeds the model (its crop, else its resize target)."""
    for attr in ("crop_size", "size"):
        size = getattr(processor, attr, None)
        if size is None:
            continue
        if isinstance(size, int):
            return size
        get = size.get if hasattr(size, "get") else lambda k: getattr(size, k, None)
        side = get("height") or get("shortest_edge")
        if side:
            return int(side)
    return 224


def _vision_tower(model: nn.Module) -> nn.Module:
    return getattr(model, "vision_model", None) or model


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The vision tower's stack of transformer layers: its largest ModuleList of identical modules."""
    tower = _vision_tower(model)
    best, best_size = None, 0
    for _, module in tower.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = module, size
    if best is None:
        raise ProdlensError(f"cannot find the transformer layers of {type(model).__name__} to fine-tune")
    return best


def _embeddings(model: nn.Module) -> nn.Module:
    tower = _vision_tower(model)
    emb = getattr(tower, "embeddings", None)
    if emb is None:
        raise ProdlensError(f"cannot find the embeddings of {type(model).__name__} to freeze")
    return emb


def tunable_backbone(encoder) -> TunableBackbone:
    """The trainable module of an image encoder built by `build_image_encoder`."""
    from .image import EfficientNetLite0, HFImageEncoder

    if isinstance(encoder, EfficientNetLite0):
        return EfficientNetBackbone(encoder)
    if isinstance(encoder, HFImageEncoder):
        return TransformersBackbone(encoder)
    raise ProdlensError(f"image encoder {getattr(encoder, 'name', encoder)!r} cannot be fine-tuned "
                        "(efficientnet-lite0 and hf: vision models can); use train.backbone = 'cached'")


class _Lower(nn.Module):
    def __init__(self, backbone: TunableBackbone, depth: int):
        super().__init__()
        self.backbone, self.depth = backbone, depth

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.lower(self.backbone.normalize(pixels), self.depth)


def pixels_of(images, size: int) -> torch.Tensor:
    """PIL images → uint8 (B, 3, size, size), resized (shorter side) and centre-cropped."""
    from .image import resize_center_crop

    arrays = [np.asarray(resize_center_crop(im, size), dtype=np.uint8) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
