import numpy as np
import pytest

from prodlens.evaluate import all_directions, evaluate_embeddings, one_shot_accuracy, retrieval_metrics
from tests.helpers import synthetic_embeddings


def _unit(rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_recall_and_average_precision_by_hand():
    gallery = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.9, 0.1, 0]])
    g_labels = ["a", "b", "c", "a"]
    queries = _unit([[1, 0, 0],        # a: ranks a, a(0.99) first → R@1 hit, AP 1
                     [0, 0.2, 1],      # b: ranks c, b → first hit at rank 2, AP 1/2
                     [0, 0, 1],        # d: no relevant item → skipped
                     ])
    out = retrieval_metrics(queries, ["a", "b", "d"], gallery, g_labels, ks=(1, 2, 5))
    assert out["n_scored"] == 2 and out["n_skipped"] == 1
    assert out["metrics"]["R@1"] == pytest.approx(0.5)
    assert out["metrics"]["R@2"] == pytest.approx(1.0)
    assert out["metrics"]["mAP"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["curve"][0] == pytest.approx(0.5)


def test_average_precision_with_two_relevant_items():
    gallery = _unit([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]])
    out = retrieval_metrics(_unit([[1, 0]]), ["x"], gallery, ["x", "y", "x", "y"])
    # relevant at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    assert out["metrics"]["mAP"] == pytest.approx((1 + 2 / 3) / 2)


def test_directions_follow_rope_order():
    assert all_directions(["live", "page", "video"]) == [("page", "video"), ("video", "page"), ("page", "live"),
                                                         ("live", "page"), ("video", "live"), ("live", "video")]
    assert all_directions(["page", "live"]) == [("page", "live"), ("live", "page")]


def test_full_evaluation_has_six_directions_and_one_shot():
    result = evaluate_embeddings(synthetic_embeddings(np.random.default_rng(0)))
    assert [r.short_name for r in result.directions] == ["P2V", "V2P", "P2L", "L2P", "V2L", "L2V"]
    assert all(r.metrics["R@10"] == 1.0 for r in result.directions)  # 5 products: everything is in the top 10
    assert set(result.one_shot) == {"video", "live"}  # one page per product: no page query
    js = result.to_json()
    assert set(js["metrics"]) == {"page2video", "video2page", "page2live", "live2page", "video2live", "live2video"}
    assert js["n_queries"] == sum(js["n_queries_by_direction"].values())


def test_metrics_drop_when_embeddings_are_noise():
    good = evaluate_embeddings(synthetic_embeddings(np.random.default_rng(1), n_products=30, noise=0.2))
    bad = evaluate_embeddings(synthetic_embeddings(np.random.default_rng(1), n_products=30, noise=20.0))
    assert good.metrics()["live2page"]["R@1"] > 0.9
    assert bad.metrics()["live2page"]["R@1"] < 0.3


def test_one_shot_accuracy_on_separable_data():
    emb = synthetic_embeddings(np.random.default_rng(2), n_products=10, per_domain=4, noise=0.05)
    acc = one_shot_accuracy(emb, "live", episodes=3)
    assert acc["accuracy"] == 1.0 and acc["n_classes"] == 10 and acc["n_queries"] == 30
    assert one_shot_accuracy(emb, "page") is None
