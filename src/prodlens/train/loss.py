"""All training losses in one place.

- Symmetric InfoNCE between every pair of domains present (page↔video, page↔live, video↔live) on the fused
  embeddings, with a learnable (or fixed) temperature and label smoothing. Positives are the same product group;
  other copies of the same product in the batch are masked out of the negatives.
- AMPere's extra terms: the same modality across domains (visual↔visual) and across modalities (visual of one
  domain ↔ text of the other), each with its weight.
- A per-product classification head with a CosFace or ArcFace margin (COPE: s=64, m=0.4).
"""
from __future__ import annotations

import math
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.config import TrainConfig

MASKED = -1e4  # a logit that softmax treats as zero probability, yet finite (so 0 * log p stays 0)


def info_nce(q: torch.Tensor, k: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor,
             label_smoothing: float = 0.0) -> torch.Tensor:
    """Symmetric InfoNCE for aligned rows q[i] ↔ k[i]; same-label off-diagonal pairs are neither positive nor negative."""
    n = q.shape[0]
    logits = scale * (q.float() @ k.float().T)
    eye = torch.eye(n, dtype=torch.bool, device=q.device)
    duplicate = (labels[:, None] == labels[None, :]) & ~eye
    logits = logits.masked_fill(duplicate, MASKED)
    allowed = (~duplicate).float()
    target = eye.float() * (1 - label_smoothing) + label_smoothing * allowed / allowed.sum(dim=1, keepdim=True)
    loss_qk = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_kq = -(target.T * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return (loss_qk + loss_kq) / 2


class MarginClassifier(nn.Module):
    """Cosine classifier with an additive (CosFace) or angular (ArcFace) margin on the target class."""

    def __init__(self, dim: int, n_classes: int, kind: str = "cosface", scale: float = 64.0, margin: float = 0.4):
        super().__init__()
        if kind not in ("cosface", "arcface"):
            raise ValueError(f"unknown classifier {kind!r} (cosface, arcface or none)")
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.kind, self.scale, self.margin = kind, scale, margin

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(embeddings.float(), dim=-1) @ F.normalize(self.weight, dim=-1).T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.logits(embeddings)
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        if self.kind == "cosface":
            adjusted = torch.where(onehot, cos - self.margin, cos)
        else:
            theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
            adjusted = torch.where(onehot, torch.cos(theta + self.margin), cos)
        return F.cross_entropy(self.scale * adjusted, labels)


class ProductLoss(nn.Module):
    def __init__(self, cfg: TrainConfig, embed_dim: int, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)),
                                        requires_grad=cfg.learn_temperature)
        self.classifier = (MarginClassifier(embed_dim, n_classes, cfg.classifier, cfg.classifier_scale,
                                            cfg.classifier_margin) if cfg.classifier != "none" else None)

    @property
    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def pair_weight(self, a: str, b: str) -> float:
        w = self.cfg.pair_weights
        return float(w.get(f"{a}-{b}", w.get(f"{b}-{a}", w.get("default", 1.0))))

    def forward(self, outputs: dict[str, dict[str, torch.Tensor]], labels: torch.Tensor):
        """`outputs[domain]` holds (G, ·) tensors for the batch's G product groups: embedding, visual, text,
        has_visual, has_text and `valid` (the group has a sample in that domain); `labels` are product indices."""
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=labels.device)
        scale = self.scale
        smoothing = self.cfg.label_smoothing
        for a, b in combinations(sorted(outputs), 2):
            oa, ob = outputs[a], outputs[b]
            rows = oa["valid"] & ob["valid"]
            if rows.sum() < 2:
                continue
            name = f"{a}-{b}"
            loss = info_nce(oa["embedding"][rows], ob["embedding"][rows], labels[rows], scale, smoothing)
            parts[f"nce/{name}"] = loss
            total = total + self.pair_weight(a, b) * loss
            if self.cfg.same_modality_weight and "visual" in oa:
                vis_rows = rows & oa["has_visual"] & ob["has_visual"]
                if vis_rows.sum() >= 2:
                    loss = info_nce(oa["visual"][vis_rows], ob["visual"][vis_rows], labels[vis_rows], scale, smoothing)
                    parts[f"same/{name}"] = loss
                    total = total + self.cfg.same_modality_weight * loss
            if self.cfg.cross_modality_weight and "visual" in oa:
                for x, y in ((oa, ob), (ob, oa)):
                    cross_rows = rows & x["has_visual"] & y["has_text"]
                    if cross_rows.sum() >= 2:
                        loss = info_nce(x["visual"][cross_rows], y["text"][cross_rows], labels[cross_rows], scale,
                                        smoothing)
                        key = f"cross/{name}"
                        parts[key] = parts.get(key, 0) + loss / 2
                        total = total + self.cfg.cross_modality_weight * loss / 2
        if self.classifier is not None:
            emb = torch.cat([o["embedding"][o["valid"]] for o in outputs.values()])
            lab = torch.cat([labels[o["valid"]] for o in outputs.values()])
            if len(lab):
                loss = self.classifier(emb, lab)
                parts["cls"] = loss
                total = total + self.cfg.classifier_weight * loss
        parts["total"] = total
        return total, parts
