"""FAISS index kinds on real vectors: exact answers, filters, removal, persistence."""
import numpy as np
import pytest

from prodlens.index import IndexConfig, VectorIndex


def clustered(n=3000, dim=32, clusters=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x, ids, q, k, allowed=None):
    mask = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    sims = q @ x[mask].T
    return ids[mask][np.argsort(-sims, axis=1)[:, :k]]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_kinds_find_the_true_neighbours_and_honour_filters_and_removal(kind):
    x = clustered()
    ids = np.arange(100, 100 + len(x), dtype=np.int64)
    index = VectorIndex.create(x.shape[1], IndexConfig(kind=kind, ivf_probe=16), x)
    index.add(x, ids)
    assert index.kind == kind and len(index) == len(x)
    q = x[:50] + 0.01
    truth = exact_top(x, ids, q, 10)
    _, got = index.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])
    # ivfpq: 16-byte codes of 32-d vectors; 0.72-0.76 on three seeds of this data
    assert recall >= (0.999 if kind == "flat" else 0.97 if kind == "hnsw" else 0.65)

    for allowed in (ids[::2], ids[:40]):  # a broad filter (selector) and a narrow one (exact over the subset)
        _, got = index.search(q, 10, allowed=allowed)
        hits = got[got >= 0]
        assert len(hits) and np.isin(hits, allowed).all()
    _, narrow = index.search(q[:5], 10, allowed=ids[:40])
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(narrow, exact_top(x, ids, q[:5], 10, ids[:40]))])
    assert overlap >= (1.0 if kind != "ivfpq" else 0.9)  # ivfpq scores are approximate (quantised vectors)

    removed = got[:, 0][:5]
    index.remove(removed)
    _, after = index.search(q, 10)
    assert not np.isin(after, removed).any()
    assert len(index) == len(x) - len(set(removed.tolist()))

    again = VectorIndex.from_bytes(index.to_bytes(), kind, index.config, index.tombstones)
    s1, i1 = index.search(q, 10)
    s2, i2 = again.search(q, 10)
    assert (i1 == i2).all() and np.allclose(s1, s2)


def test_auto_is_exact_for_small_sets_and_hnsw_for_large():
    x = clustered(200)
    assert VectorIndex.create(32, IndexConfig(), x).kind == "flat"
    assert VectorIndex.create(32, IndexConfig(exact_below=100), x).kind == "hnsw"


def test_dimension_mismatch_is_refused():
    x = clustered(100)
    index = VectorIndex.create(32, IndexConfig(kind="flat"), x)
    with pytest.raises(Exception, match="dimension"):
        index.add(np.zeros((2, 8), np.float32), np.array([1, 2]))
    with pytest.raises(Exception, match="dimension"):
        index.search(np.zeros((1, 8), np.float32), 3)
