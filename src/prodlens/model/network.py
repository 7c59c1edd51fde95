"""The multi-branch product embedding network (COPE / AMPere): visual branch with temporal aggregation, text branch,
fusion, optional per-domain adapters, projection to a compact L2-normalised embedding. Weights are shared across
domains; the adapters are the only domain-specific part.

Inputs are backbone features (frozen backbones, cached) — see `prodlens.train.data` — or, for fine-tuning,
features computed by a backbone module in the same forward pass (`BackboneFeatures`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import DOMAINS
from .config import FusionConfig, ModelConfig, VisualConfig

DOMAIN_INDEX = {domain: i for i, domain in enumerate(DOMAINS)}


class VisualBranch(nn.Module):
    """Per-frame features → width, then mean pooling or a small transformer over frames (COPE's multi-frame fusion)."""

    def __init__(self, in_dim: int, width: int, cfg: VisualConfig):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, width))
        self.aggregator = cfg.aggregator
        if cfg.aggregator == "transformer":
            self.positions = nn.Parameter(torch.randn(cfg.max_frames, width) * 0.02)
            layer = nn.TransformerEncoderLayer(width, cfg.heads, dim_feedforward=2 * width, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        elif cfg.aggregator != "mean":
            raise ValueError(f"unknown visual aggregator {cfg.aggregator!r} (mean or transformer)")
        self.norm = nn.LayerNorm(width)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.proj(frames)  # (B, F, W)
        has_any = mask.any(dim=1)
        if self.aggregator == "transformer":
            # rows without frames would make attention NaN: let them attend to a dummy slot, zeroed below
            safe = mask | ~has_any[:, None] & (torch.arange(mask.shape[1], device=mask.device) == 0)[None, :]
            x = self.encoder(x + self.positions[: x.shape[1]], src_key_padding_mask=~safe)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.norm(pooled) * has_any[:, None].to(x.dtype)


class TextBranch(nn.Module):
    def __init__(self, in_dim: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, width),
                                 nn.LayerNorm(width))

    def forward(self, text: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        return self.net(text) * has_text[:, None].to(text.dtype)


class Fusion(nn.Module):
    def __init__(self, width: int, cfg: FusionConfig):
        super().__init__()
        self.kind = cfg.kind
        if cfg.kind == "mlp":
            self.net = nn.Sequential(nn.Linear(2 * width + 2, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout),
                                     nn.Linear(cfg.hidden, width))
        elif cfg.kind == "attention":
            self.type_embedding = nn.Parameter(torch.randn(2, width) * 0.02)
            self.layer = nn.TransformerEncoderLayer(width, 4, dim_feedforward=cfg.hidden, dropout=cfg.dropout,
                                                    batch_first=True, norm_first=True)
        else:
            raise ValueError(f"unknown fusion {cfg.kind!r} (mlp or attention)")
        self.norm = nn.LayerNorm(width)

    def forward(self, v: torch.Tensor, t: torch.Tensor, has_v: torch.Tensor, has_t: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            flags = torch.stack([has_v, has_t], dim=1).to(v.dtype)
            return self.norm(self.net(torch.cat([v, t, flags], dim=1)))
        tokens = torch.stack([v, t], dim=1) + self.type_embedding
        present = torch.stack([has_v, has_t], dim=1)
        present = present | ~present.any(dim=1, keepdim=True)  # never mask both tokens
        x = self.layer(tokens, src_key_padding_mask=~present)
        m = present.unsqueeze(-1).to(x.dtype)
        return self.norm((x * m).sum(dim=1) / m.sum(dim=1))


class ProductEmbeddingModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        if cfg.image_feature_dim is None or cfg.text_feature_dim is None:
            raise ValueError("model.image_feature_dim / text_feature_dim are unset: resolve them from the encoders "
                             "(prodlens.model.with_encoder_widths) before building the model")
        self.visual = VisualBranch(cfg.image_feature_dim, w, cfg.visual)
        self.text = TextBranch(cfg.text_feature_dim, w)
        self.fusion = Fusion(w, cfg.fusion)
        self.adapters = nn.ModuleList(nn.Linear(w, w) for _ in DOMAIN_INDEX) if cfg.domain_adapters else None
        if self.adapters is not None:
            for a in self.adapters:  # start as the identity: the shared space first, domain tweaks learned on top
                nn.init.zeros_(a.weight)
                nn.init.zeros_(a.bias)
        self.projection = nn.Linear(w, cfg.embed_dim)
        if cfg.branch_heads:
            self.visual_head = nn.Linear(w, cfg.embed_dim)
            self.text_head = nn.Linear(w, cfg.embed_dim)

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor, text: torch.Tensor, has_text: torch.Tensor,
                domain: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cfg.text_source == "none":
            has_text = torch.zeros_like(has_text)
        has_visual = frame_mask.any(dim=1)
        v = self.visual(frames, frame_mask)
        t = self.text(text, has_text)
        x = self.fusion(v, t, has_visual, has_text)
        if self.adapters is not None:
            adapted = torch.stack([a(x) for a in self.adapters], dim=1)  # (B, domains, W)
            x = x + adapted[torch.arange(x.shape[0], device=x.device), domain]
        out = {"embedding": F.normalize(self.projection(x), dim=-1), "has_visual": has_visual, "has_text": has_text}
        if self.cfg.branch_heads:
            out["visual"] = F.normalize(self.visual_head(v), dim=-1)
            out["text"] = F.normalize(self.text_head(t), dim=-1)
        return out


def create_model(cfg: ModelConfig) -> ProductEmbeddingModel:
    return ProductEmbeddingModel(cfg)
