from collections import Counter

import torch

from prodlens.train import GroupBatcher


def _catalogue():
    products, domains = [], []
    for p in range(10):
        products.append(f"p{p}")
        domains.append("page")
        for k in range(3 + p % 3):
            products.append(f"p{p}")
            domains.append("live")
    products.append("lonely")  # only one domain: cannot form a cross-domain group
    domains.append("live")
    return products, domains


def test_batches_hold_distinct_products_and_cover_anchors():
    products, domains = _catalogue()
    batcher = GroupBatcher(products, domains, products_per_batch=4, groups_per_product=2, seed=3)
    assert "lonely" not in {products[a] for a in batcher.anchors}
    batches = batcher.epoch(0)
    assert len(batches) == batcher.steps_per_epoch()
    anchors_seen = Counter()
    for batch in batches:
        per_product = Counter(products[g["live"]] for g in batch)
        assert len(per_product) <= 4 and max(per_product.values()) <= 2
        for g in batch:
            assert set(g) == {"page", "live"} and products[g["page"]] == products[g["live"]]
            anchors_seen[g["live"]] += 1
    assert max(anchors_seen.values()) == 1  # each anchor at most once an epoch
    assert batcher.epoch(0) == batches and batcher.epoch(1) != batches  # deterministic, reshuffled per epoch


def test_collate_masks_and_dropouts(tmp_path):
    from prodlens.errors import BadRecords
    from prodlens.model.features import FeatureTable
    from prodlens.train import collate

    n = 4
    table = FeatureTable([f"s{i}" for i in range(n)], ["a", "a", "b", "b"], ["page", "live", "page", "live"],
                         [None] * n, torch.randn(n, 2, 3, 5), torch.tensor([[1, 0, 0], [1, 1, 1]] * 2).bool(),
                         torch.randn(n, 7), torch.tensor([True, False, True, True]), BadRecords())
    groups = [{"page": 0, "live": 1}, {"page": 2, "live": 3}, {}]
    batch = collate(table, groups, {"a": 0, "b": 1}, ["live", "page"], train=True,
                    generator=torch.Generator().manual_seed(0), frame_dropout=0.9, text_dropout=1.0)
    assert batch.rows_by_domain["page"].tolist() == [0, 2, -1] and batch.labels.tolist() == [0, 1, -1]
    assert batch.frame_mask.any(dim=1).all()  # never every frame dropped
    assert not batch.has_text.any()  # text dropout 1.0 drops all text of samples that have frames
