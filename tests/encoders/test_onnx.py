"""ONNX Runtime as the image encoders' runtime: the same features as torch, exported once per weights."""
import numpy as np
import pytest
from PIL import Image

from prodlens.embed import EmbedConfig
from prodlens.embed.embedder import FeatureExtractor
from prodlens.encoders import load_image_encoder
from prodlens.encoders.onnx import OnnxImageEncoder
from tests.helpers import tiny_hf_model


def photos(n: int, size=(180, 140)) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)) for _ in range(n)]


def test_onnx_features_and_logits_equal_torch_and_the_export_is_reused(tmp_path):
    torch_encoder = load_image_encoder("efficientnet-lite0")
    onnx_encoder = OnnxImageEncoder(torch_encoder, "efficientnet-lite0#test@224", directory=tmp_path)
    images = photos(5)
    a, b = torch_encoder.encode(images), onnx_encoder.encode(images)
    assert np.abs(a.features - b.features).max() < 1e-4 and np.abs(a.logits - b.logits).max() < 1e-3
    assert onnx_encoder.dim == 1280 and onnx_encoder.class_names == torch_encoder.class_names
    stamp = onnx_encoder.path.stat().st_mtime_ns
    again = OnnxImageEncoder(torch_encoder, "efficientnet-lite0#test@224", directory=tmp_path)
    assert again.path == onnx_encoder.path and again.path.stat().st_mtime_ns == stamp  # not exported again
    assert OnnxImageEncoder(torch_encoder, "other-weights", directory=tmp_path).path != onnx_encoder.path
    assert onnx_encoder.encode([]).features.shape == (0, 1280)


def test_the_runtime_is_a_setting_that_does_not_change_features_or_identity():
    onnx = FeatureExtractor(EmbedConfig())
    torch_ = FeatureExtractor(EmbedConfig(runtime="torch"))
    assert isinstance(onnx.image_encoder, OnnxImageEncoder) and not isinstance(torch_.image_encoder, OnnxImageEncoder)
    f_onnx, p_onnx = onnx.encode_frames(photos(3))
    f_torch, p_torch = torch_.encode_frames(photos(3))
    assert np.abs(f_onnx - f_torch).max() < 1e-4
    assert EmbedConfig().signature() == EmbedConfig(runtime="torch").signature()
    assert onnx.image_model_key == torch_.image_model_key  # one feature cache for both
    with pytest.raises(ValueError, match="runtime"):
        EmbedConfig(runtime="tensorrt")


def test_a_hub_model_runs_in_onnx_runtime_too(tmp_path):
    spec = tiny_hf_model(tmp_path / "vit")
    onnx = FeatureExtractor(EmbedConfig(image_encoder=spec))
    torch_ = FeatureExtractor(EmbedConfig(image_encoder=spec, runtime="torch"))
    assert isinstance(onnx.image_encoder, OnnxImageEncoder)
    assert np.abs(onnx.encode_frames(photos(2))[0] - torch_.encode_frames(photos(2))[0]).max() < 1e-4
