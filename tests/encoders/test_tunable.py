"""The trainable split of image encoders: lower + upper at any depth computes the encoder's own features, and
the parameters handed to the optimiser are exactly the top blocks'."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from prodlens.encoders import build_image_encoder
from prodlens.encoders.tunable import pixels_of, tunable_backbone
from prodlens.errors import ProdlensError
from tests.helpers import tiny_hf_model


def photos(n: int = 3) -> list[Image.Image]:
    g = torch.Generator().manual_seed(0)
    return [Image.fromarray(torch.randint(0, 256, (40 + 7 * i, 48, 3), generator=g, dtype=torch.uint8).numpy())
            for i in range(n)]


@pytest.mark.parametrize("kind", ["vit", "dinov2", "clip"])
def test_transformers_split_at_every_depth_matches_the_encoder(tmp_path, kind):
    encoder = build_image_encoder(tiny_hf_model(tmp_path / kind, kind))
    backbone = tunable_backbone(encoder).eval()
    pixels = pixels_of(photos(), backbone.image_size)
    expected = torch.from_numpy(encoder.encode([Image.fromarray(p.permute(1, 2, 0).numpy()) for p in pixels])
                                .features)
    with torch.no_grad():
        for depth in range(backbone.blocks + 1):
            x = backbone.normalize(pixels)
            out = backbone.upper(backbone.lower(x, depth), depth)
            assert out.shape == (3, encoder.dim)
            torch.testing.assert_close(out, expected, atol=2e-3, rtol=1e-3, msg=f"{kind} at depth {depth}")
    assert len(backbone.layers) == 3  # the layers are put back after every call


def test_efficientnet_split_matches_the_encoder():
    encoder = build_image_encoder("efficientnet-lite0")
    backbone = tunable_backbone(encoder).eval()
    images = photos(2)
    expected = torch.from_numpy(encoder.encode(images).features)
    with torch.no_grad():
        x = backbone.normalize(pixels_of(images, backbone.image_size))
        for depth in (0, 1, 4, backbone.blocks):
            torch.testing.assert_close(backbone.upper(backbone.lower(x, depth), depth), expected, atol=1e-3, rtol=1e-3)


def test_top_parameters_are_the_top_blocks_only(tmp_path):
    backbone = tunable_backbone(build_image_encoder(tiny_hf_model(tmp_path / "vit", "vit", layers=3)))
    everything = {id(p) for p in backbone.model.parameters()}
    top1 = {id(p) for p in backbone.top_parameters(1)}
    assert top1 < everything
    assert {id(p) for p in backbone.layers[2].parameters()} <= top1
    assert not {id(p) for p in backbone.layers[1].parameters()} & top1
    assert not {id(p) for p in backbone.model.embeddings.parameters()} & top1
    assert {id(p) for p in backbone.top_parameters(3)} == everything
    with pytest.raises(ProdlensError, match="between 0 and 3"):
        backbone.top_parameters(4)


def test_gradients_reach_only_the_trained_blocks(tmp_path):
    backbone = tunable_backbone(build_image_encoder(tiny_hf_model(tmp_path / "vit", "vit", layers=3))).train()
    x = backbone.normalize(pixels_of(photos(2), backbone.image_size))
    with torch.no_grad():
        acts = backbone.lower(x, 1)
    backbone.upper(acts, 1).sum().backward()
    assert all(p.grad is not None for p in backbone.layers[2].parameters())
    assert all(p.grad is None for p in backbone.layers[0].parameters())
