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


def test_content_cache_keys_name_the_weights_and_the_engine(tmp_path, monkeypatch):
    from prodlens.rec.content import content_key

    model = tmp_path / "my-encoder"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"first training")
    before = content_key(f"st:{model}")
    (model / "weights.bin").write_bytes(b"trained again, in place")
    assert content_key(f"st:{model}") != before  # a model retrained in place never serves old vectors
    monkeypatch.setattr(content_module, "offline_llm_path", lambda name: model / "weights.bin")
    engines = {}
    for engine in ("llama.cpp", "transformers"):
        monkeypatch.setattr(content_module, "llm_engine", lambda device="cpu", engine_name=engine: engine_name)
        engines[engine] = content_key("llm:gemma3-270m")
    assert engines["llama.cpp"] != engines["transformers"]  # two engines, two sets of vectors
