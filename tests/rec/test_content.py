"""Content embedding generation: a real sentence encoder and a real causal LLM (Gemma-3-270M), cached."""
import numpy as np
import pytest

from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError
from prodlens.rec import content as content_module
from prodlens.rec.content import content_vectors

TEXTS = ["Matte red lipstick, long lasting", "Long lasting red lipstick with a matte finish",
         "Cordless drill 18V with two batteries"]


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_sentence_encoder_vectors_are_cached(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "c")
    v = content_vectors(["a", "b", "c"], TEXTS, "minilm", cache, progress=False)
    assert v.shape == (3, 384) and cosine(v[0], v[1]) > cosine(v[0], v[2]) + 0.3
    monkeypatch.setattr(content_module, "build_content_encoder", lambda *a, **k: pytest.fail("cache missed"))
    again = content_vectors(["a", "b", "c"], TEXTS, "minilm", FeatureCache(tmp_path / "c"), progress=False)
    assert np.array_equal(v, again)


@pytest.mark.slow
def test_causal_llm_mean_pooled_last_layer():
    v = content_vectors(["a", "b", "c"], TEXTS, "llm:gemma3-270m", FeatureCache(None), progress=False)
    assert v.shape == (3, 640) and np.isfinite(v).all()
    centred = v - v.mean(0)  # raw LLM states share a large common direction
    assert cosine(centred[0], centred[1]) > cosine(centred[0], centred[2])


def test_product_embeddings_must_cover_the_items(tmp_path):
    from prodlens.embed import Embeddings

    emb = Embeddings(["page/p1", "live/p1", "page/p2"], ["p1", "p1", "p2"], ["page", "live", "page"], [None] * 3,
                     np.eye(3, dtype=np.float32), {"model": "m"})
    emb.save(tmp_path / "e.parquet")
    v = content_vectors(["p2", "p1"], ["", ""], f"embeddings:{tmp_path / 'e.parquet'}")
    assert np.allclose(v[0], [0, 0, 1]) and np.allclose(v[1], np.array([1, 1, 0]) / np.sqrt(2))
    with pytest.raises(ProdlensError, match="no product embedding"):
        content_vectors(["p1", "p9"], ["", ""], f"embeddings:{tmp_path / 'e.parquet'}")
