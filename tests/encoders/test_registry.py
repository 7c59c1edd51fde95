"""Encoders built from spec strings: registered factories get the image size only when they take one."""
import pytest

from prodlens.encoders import registry


def test_a_factory_error_is_not_taken_for_a_missing_image_size(monkeypatch):
    calls = []
    monkeypatch.setitem(registry._IMAGE, "sizeless", lambda device="cpu": calls.append(device) or "built")
    assert registry.build_image_encoder("sizeless", "cpu", 320) == "built" and calls == ["cpu"]

    def broken(device="cpu", image_size=224):
        raise TypeError("a bug inside the factory")

    monkeypatch.setitem(registry._IMAGE, "broken", broken)
    with pytest.raises(TypeError, match="a bug inside the factory"):
        registry.build_image_encoder("broken", "cpu", 320)


def test_encoders_load_once_per_process_and_are_shared(monkeypatch):
    from prodlens.cache import FeatureCache
    from prodlens.embed import EmbedConfig, ProductEmbedder

    loads = []

    def counted(device="cpu"):
        loads.append(device)
        return object()

    monkeypatch.setitem(registry._TEXT, "counted", counted)
    a = ProductEmbedder(EmbedConfig(text_encoder="counted"), FeatureCache(None))
    b = ProductEmbedder(EmbedConfig(text_encoder="counted"), FeatureCache(None))
    assert a.features.text_encoder is b.features.text_encoder and loads == ["cpu"]
    # a fresh instance is still one call away (training fine-tunes copies, never the shared one)
    assert registry.build_text_encoder("counted") is not a.features.text_encoder and len(loads) == 2
