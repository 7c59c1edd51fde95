import json

import pytest
import torch

from prodlens.errors import ProdlensError
from prodlens.model import create_model, load_run_config, packaged_configs, with_encoder_widths


def _model(cfg):
    return create_model(with_encoder_widths(cfg.model, 1280, 384)).eval()


def _inputs(b=6, f=4):
    mask = torch.ones(b, f, dtype=torch.bool)
    mask[1, 2:] = False
    mask[2] = False  # a text-only sample
    has_text = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool)[:b]
    return torch.randn(b, f, 1280), mask, torch.randn(b, 384), has_text, torch.tensor([0, 1, 2, 0, 1, 2])[:b]


@pytest.mark.parametrize("aggregator", ["mean", "transformer"])
@pytest.mark.parametrize("fusion", ["mlp", "attention"])
def test_outputs_are_unit_vectors_for_every_kind_of_sample(aggregator, fusion):
    cfg = load_run_config("default", {"model": {"visual": {"aggregator": aggregator}, "fusion": {"kind": fusion}}})
    model = _model(cfg)
    out = model(*_inputs())
    assert out["embedding"].shape == (6, 128)
    assert torch.isfinite(out["embedding"]).all()
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(6), atol=1e-5)
    assert out["has_visual"].tolist() == [True, True, False, True, True, True]


def test_frame_padding_does_not_change_the_embedding():
    model = _model(load_run_config("default"))
    frames, mask, text, has_text, domain = _inputs()
    a = model(frames, mask, text, has_text, domain)["embedding"]
    frames2 = frames.clone()
    frames2[1, 2:] = 999.0  # garbage in padded slots
    b = model(frames2, mask, text, has_text, domain)["embedding"]
    assert torch.allclose(a, b, atol=1e-5)


def test_domain_adapters_start_as_identity_then_differ():
    model = _model(load_run_config("default"))
    frames, mask, text, has_text, _ = _inputs(b=3)
    same = [model(frames, mask, text, has_text, torch.full((3,), d))["embedding"] for d in range(3)]
    assert torch.allclose(same[0], same[1]) and torch.allclose(same[0], same[2])
    torch.nn.init.normal_(model.adapters[2].weight)
    assert not torch.allclose(model(frames, mask, text, has_text, torch.full((3,), 2))["embedding"], same[0])


def test_config_files(tmp_path):
    assert "default" in packaged_configs() and "tiny" in packaged_configs()
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"embed_dim": 64}, "train": {"epochs": 3}}))
    cfg = load_run_config(path)
    assert cfg.model.embed_dim == 64 and cfg.train.epochs == 3 and cfg.model.width == 256
    path.write_text(json.dumps({"model": {"embed_dimension": 64}}))
    with pytest.raises(ProdlensError, match="unknown config key.*embed_dimension"):
        load_run_config(path)
    with pytest.raises(ProdlensError, match="no packaged config 'huge'"):
        load_run_config("huge")


def test_input_widths_come_from_the_encoders():
    model = create_model(with_encoder_widths(load_run_config("default").model, 768, 512)).eval()
    out = model(torch.randn(2, 3, 768), torch.ones(2, 3, dtype=torch.bool), torch.randn(2, 512),
                torch.ones(2, dtype=torch.bool), torch.tensor([0, 2]))
    assert out["embedding"].shape == (2, 128)
    with pytest.raises(ValueError, match="unset"):
        create_model(load_run_config("default").model)
    pinned = load_run_config("default", {"model": {"image_feature_dim": 1280}}).model
    with pytest.raises(ProdlensError, match="outputs 768-d features"):
        with_encoder_widths(pinned, 768, 384)


def test_set_overrides_reach_nested_fields_and_bad_ones_are_named():
    from prodlens.model.config import parse_overrides

    overrides = parse_overrides(["train.trainable_blocks=8", "model.visual.layers=2", "model.image_encoder=hf:x"])
    cfg = load_run_config("default", overrides)
    assert cfg.train.trainable_blocks == 8 and cfg.model.image_encoder == "hf:x"
    assert cfg.model.visual.layers == 2 and cfg.model.visual.aggregator == "transformer"  # siblings kept
    with pytest.raises(ProdlensError, match="section.key=value"):
        parse_overrides(["epochs=3"])
    with pytest.raises(ProdlensError, match="unknown config key.*trainable_block"):
        load_run_config("default", parse_overrides(["train.trainable_block=8"]))
