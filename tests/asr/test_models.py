"""The offline Whisper models: the multilingual base model joined from its two wheels (checksummed), the model
chosen by the catalogue's language, and the error-rate measures of bench/asr_wer.py."""
import pytest

from prodlens.asr import Transcriber, catalog_language, models
from prodlens.asr.metrics import error_rate, normalise_chars, normalise_words
from prodlens.catalog import Catalog, Product
from prodlens.embed import FeatureCache
from prodlens.errors import ProdlensError
from tests.helpers import speak


def _catalog(*titles: str) -> Catalog:
    return Catalog.build(".", [Product(f"p{i}", t) for i, t in enumerate(titles)], [])


def test_the_catalogue_language_picks_the_model():
    assert catalog_language(_catalog("Lumo organic shampoo", "Bean Bros coffee")) == "en"
    assert catalog_language(_catalog("完美日记口红", "三只松鼠坚果 500g")) == "zh"
    assert catalog_language(_catalog("Crème hydratante à l'aloe vera", "Café moulu très fort été")) == "other"
    auto = Transcriber(cache=FeatureCache(None))
    assert auto.for_language("en").model_spec == "tiny.en-offline"
    zh = auto.for_language("zh")
    assert (zh.model_spec, zh.language) == ("base-offline", "zh")
    other = auto.for_language("other")
    assert (other.model_spec, other.language) == ("base-offline", None)  # detected per clip
    fixed = Transcriber("tiny.en-offline", cache=FeatureCache(None))
    assert fixed.for_language("zh") is fixed  # a model the user chose is kept


def test_whisper_base_is_joined_once_and_checked(tmp_path, monkeypatch):
    path = models.whisper_base_path(tmp_path / "base")
    assert (path / "model.bin").stat().st_size > 100_000_000 and (path / "tokenizer.json").is_file()
    assert models.whisper_base_path(tmp_path / "base") == path  # already there: not joined again
    monkeypatch.setattr(models, "WHISPER_BASE_SHA256", "0" * 64)
    with pytest.raises(ProdlensError, match="sha256"):
        models.whisper_base_path(tmp_path / "other")
    assert not list((tmp_path / "other").glob("*model.bin*"))  # nothing half-written is left


def test_the_multilingual_model_transcribes_and_names_the_language(tmp_path):
    audio, rate = speak("Today I am showing you a bottle of green apple shampoo.", tmp_path / "p.wav")
    import numpy as np

    t = Transcriber("base-offline", cache=FeatureCache(None)).transcribe_audio(
        np.interp(np.arange(0, audio.size, rate / 16000), np.arange(audio.size), audio).astype(np.float32), "clip")
    assert "shampoo" in t.text.lower() and t.language == "en", t


def test_error_rates_count_edits_over_reference_tokens():
    assert normalise_words("Mr. Dashwood had 10 ill-disposed sons!") == \
        ["mister", "dashwood", "had", "ten", "ill", "disposed", "sons"]
    assert normalise_chars("我家猫，又在 捣乱。") == list("我家猫又在捣乱")
    ref, hyp = "the cat sat on the mat".split(), "the cat sat on mat today".split()
    assert error_rate([(ref, hyp)]) == pytest.approx(2 / 6)  # one deletion, one insertion
    assert error_rate([(ref, ref), (["a"], ["b"])]) == pytest.approx(1 / 7)  # pooled, not a mean of rates
