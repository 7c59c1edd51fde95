import math

import pytest
import torch
import torch.nn.functional as F

from prodlens.model.config import TrainConfig
from prodlens.train import MarginClassifier, ProductLoss, info_nce


def _unit(x):
    return F.normalize(x, dim=-1)


def test_info_nce_is_low_for_aligned_pairs_and_high_for_shuffled():
    torch.manual_seed(0)
    q = _unit(torch.randn(16, 32))
    labels = torch.arange(16)
    scale = torch.tensor(20.0)
    aligned = info_nce(q, q, labels, scale)
    shuffled = info_nce(q, q[torch.randperm(16)], labels, scale)
    assert aligned < 0.05 < shuffled


def test_duplicates_of_a_product_are_masked_not_negatives():
    torch.manual_seed(1)
    q = _unit(torch.randn(4, 8))
    k = q.clone()
    k[1] = q[0]  # group 1 shows the same product as group 0 and looks the same
    labels = torch.tensor([7, 7, 3, 5])
    masked = info_nce(q, k, labels, torch.tensor(10.0))
    unmasked = info_nce(q, k, torch.arange(4), torch.tensor(10.0))
    assert masked < unmasked
    # by hand for row 0: column 1 (same product) is excluded from the softmax
    logits = 10.0 * q @ k.T
    row0 = -torch.log_softmax(logits[0, [0, 2, 3]], dim=0)[0]
    assert row0 < -torch.log_softmax(logits[0], dim=0)[0]


def test_label_smoothing_spreads_the_target_over_the_allowed_columns_only():
    torch.manual_seed(2)
    q, k = _unit(torch.randn(6, 8)), _unit(torch.randn(6, 8))
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    eps, scale = 0.1, 20.0
    loss = info_nce(q, k, labels, torch.tensor(scale), label_smoothing=eps)

    def one_way(a, b):  # by hand: each row's softmax over the columns that are not its duplicates
        total = 0.0
        for i in range(6):
            allowed = [j for j in range(6) if j == i or labels[j] != labels[i]]
            logp = torch.log_softmax(scale * a[i] @ b[allowed].T, dim=0)
            target = torch.full((len(allowed),), eps / len(allowed))
            target[allowed.index(i)] += 1 - eps
            total += -(target * logp).sum()
        return total / 6

    assert loss.item() == pytest.approx(((one_way(q, k) + one_way(k, q)) / 2).item(), rel=1e-5)


def test_margin_classifiers_learn_and_cosface_adds_its_margin():
    for kind in ("cosface", "arcface"):
        torch.manual_seed(0)
        head = MarginClassifier(8, 5, kind=kind, scale=16.0, margin=0.2)
        emb = torch.randn(40, 8, requires_grad=True)
        labels = torch.arange(40) % 5
        opt = torch.optim.SGD([emb, *head.parameters()], lr=0.5)
        first = head(emb, labels).item()
        for _ in range(50):
            opt.zero_grad()
            loss = head(emb, labels)
            loss.backward()
            opt.step()
        assert loss.item() < first / 2, kind
    head = MarginClassifier(4, 2, "cosface", scale=1.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    e = torch.tensor([[1.0, 0, 0, 0]])
    expected = -torch.log_softmax(torch.tensor([1.0 - 0.5, 0.0]), dim=0)[0]
    assert math.isclose(head(e, torch.tensor([0])).item(), expected.item(), rel_tol=1e-5)


def test_product_loss_uses_every_domain_pair_and_ampere_terms():
    torch.manual_seed(0)
    cfg = TrainConfig(temperature=0.05, classifier="cosface")
    loss_fn = ProductLoss(cfg, embed_dim=8, n_classes=5)
    g = 5
    outputs = {}
    for d in ("page", "video", "live"):
        outputs[d] = {"embedding": _unit(torch.randn(g, 8)), "visual": _unit(torch.randn(g, 8)),
                      "text": _unit(torch.randn(g, 8)), "has_visual": torch.ones(g, dtype=torch.bool),
                      "has_text": torch.tensor([True, False, True, True, False]), "valid": torch.ones(g, dtype=torch.bool)}
    outputs["video"]["valid"][4] = False
    total, parts = loss_fn(outputs, torch.arange(g))
    assert {"nce/live-page", "nce/live-video", "nce/page-video", "same/live-page", "cross/live-page", "cls"} <= set(parts)
    assert torch.isfinite(total)
    assert abs(1 / loss_fn.scale.item() - 0.05) < 1e-6 and loss_fn.logit_scale.requires_grad
