"""Full-ranking metrics against hand-computed values, and the ranking's masking of seen items."""
import math

import numpy as np
import pytest
import torch

from prodlens.rec.evaluate import metrics_from_ranks, target_ranks


def test_recall_and_ndcg_by_hand():
    ranks = np.array([0, 2, 9, 10, 30])  # 0-based ranks of each test case's target
    m = metrics_from_ranks(ranks)
    assert m["R@10"] == pytest.approx(3 / 5) and m["R@20"] == pytest.approx(4 / 5) and m["n"] == 5
    assert m["N@10"] == pytest.approx((1 / math.log2(2) + 1 / math.log2(4) + 1 / math.log2(11)) / 5)
    assert m["N@20"] == pytest.approx(m["N@10"] + 1 / math.log2(12) / 5)
    assert metrics_from_ranks(np.array([], np.int64)) == {"R@10": 0.0, "N@10": 0.0, "R@20": 0.0, "N@20": 0.0, "n": 0}


class FixedScores:
    """A recommender whose user state is the last item's one-hot vector and whose item vectors are given."""

    def __init__(self, items):
        self.items = torch.tensor(items, dtype=torch.float32)

    def eval(self):
        return self

    def item_vectors(self):
        return self.items

    def logit_scale(self):
        return 1.0

    def states(self, seqs):
        return self.items[seqs.clamp(max=len(self.items) - 1)]


def test_ranks_mask_the_history_but_not_the_target_and_ties_count_against_it():
    # scores from item 0's state: item 0 1.0, item 1 0.9, items 2 and 3 0.5 (a tie)
    model = FixedScores([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    assert target_ranks(model, [(0, [0], 2)], 4).tolist() == [2]  # item 0 seen (masked); 1 above; 3 ties
    assert target_ranks(model, [(0, [1, 0], 2)], 4).tolist() == [1]  # 1 seen too: only the tie is left
    assert target_ranks(model, [(0, [0], 0)], 4).tolist() == [0]  # a target bought before is ranked, not masked
    # a model that scores everything alike ranks every target last, not first
    flat = FixedScores([[1.0, 0.0]] * 4)
    assert target_ranks(flat, [(0, [], 1)], 4).tolist() == [3]
    pop = np.array([5.0, 1.0, 3.0, 3.0])
    assert target_ranks(None, [(0, [0], 2), (1, [], 1)], 4, popularity=pop).tolist() == [1, 3]
