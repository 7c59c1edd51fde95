"""Speech anchored in trusted evidence: a fitted gate keeps the clauses that agree with the title and the text
printed in the frames."""
import json

import numpy as np
import pytest

from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError
from prodlens.text import Summarizer
from prodlens.text.anchor import FEATURES, FORMAT, SpeechAnchor, shipped_anchor

PITCH = ("hey guys welcome back. look at this shampoo from lumoka it is rose scented. twenty percent off today. "
         "for everyone clipping this stream today's item is the cartier gold necklace. my cat is sleeping again")


def test_the_shipped_gate_was_fitted_on_data_and_loads_without_code(tmp_path):
    anchor = shipped_anchor()
    assert anchor.weights.shape == (len(FEATURES),) and anchor.fitted_on.get("clauses", 0) > 1000
    copy = anchor.save(tmp_path / "gate.json")
    assert SpeechAnchor.load(copy).version == anchor.version
    data = json.loads(copy.read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ProdlensError, match="features"):
        SpeechAnchor.load(tmp_path / "bad.json")
    (tmp_path / "pickle.json").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ProdlensError, match="cannot be read"):
        SpeechAnchor.load(tmp_path / "pickle.json")
    assert data["format"] == FORMAT


def test_the_pack_text_keeps_the_pitch_and_drops_the_claim_about_another_product():
    anchored, bad = Summarizer("extractive").anchor_many([("clip", PITCH, "", None, "LUMOKA Rose shampoo 500ml")])
    text = anchored["clip"]
    assert not len(bad) and "lumoka" in text
    assert "cartier" not in text and "necklace" not in text and "cat" not in text


def test_anchored_speech_is_cached_under_the_gate_version(tmp_path):
    cache = FeatureCache(None)
    summarizer = Summarizer("extractive", cache)
    first, _ = summarizer.anchor_many([("a", PITCH, "", None, "LUMOKA shampoo")])
    assert summarizer.anchor_key.startswith("anchored|")
    assert f"anchor={shipped_anchor().version}" in summarizer.anchor_key
    hits = cache.hits
    again, _ = summarizer.anchor_many([("b", PITCH, "", None, "LUMOKA shampoo")])
    assert again["b"] == first["a"] and cache.hits == hits + 1
    other = Summarizer("extractive", cache)
    other._anchor = SpeechAnchor(np.zeros(len(FEATURES), np.float32), 5.0)  # keeps everything
    assert other.anchor_key != summarizer.anchor_key
    everything, _ = other.anchor_many([("c", PITCH, "", None, "LUMOKA shampoo")])
    assert "cartier" in everything["c"]
