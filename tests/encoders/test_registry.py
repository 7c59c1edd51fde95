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
