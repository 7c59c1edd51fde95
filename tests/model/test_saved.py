"""Model directories (save / load / check weights) and the ONNX export of a trained model's image tower."""
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import prodlens
from prodlens.embed import EmbedConfig, model_id
from prodlens.embed.saved import MODEL_FILE, write_model_dir
from prodlens.errors import ProdlensError
from prodlens.model import RunConfig, create_model, with_encoder_widths
from prodlens.model.checkpoint import CheckpointEmbedder

BIN = Path(sys.executable).parent


def trained_dir(path, flip_tta=True, seed=0):
    """A trained model's directory with a (randomly initialised) network: what decides the output is all there."""
    torch.manual_seed(seed)
    cfg = RunConfig()
    cfg.model = with_encoder_widths(cfg.model, 1280, 384)
    network = create_model(cfg.model)
    for p in network.parameters():
        torch.nn.init.normal_(p, std=0.05)
    settings = {k: v for k, v in asdict(EmbedConfig(flip_tta=flip_tta)).items() if k not in ("device", "batch_size")}
    record = {"kind": "trained", "settings": settings, "config": cfg.to_dict(),
              "weights": {"image": prodlens.load_encoder().signature()["weights"]["image"]}, "model_id": "?"}
    return write_model_dir(path, record, "card", network.state_dict())


def photos(n=4):
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((120, 90, 3)) * 255).astype("uint8")) for _ in range(n)]


def test_a_zero_shot_directory_keeps_its_settings_and_refuses_other_weights(tmp_path):
    encoder = prodlens.load_encoder(frames=4, visual_weight=0.5)
    encoder.save(tmp_path / "zs")
    record = json.loads((tmp_path / "zs" / MODEL_FILE).read_text())
    assert record["settings"]["frames"] == 4 and record["model_id"] == model_id(encoder.signature())
    assert "Apache-2.0" in (tmp_path / "zs" / "README.md").read_text()  # the licences of the weights it uses
    loaded = prodlens.load_encoder(tmp_path / "zs")
    assert loaded.config.visual_weight == 0.5 and model_id(loaded.signature()) == record["model_id"]
    texts = ["oat milk 1 l", "green apple"]
    assert np.abs(loaded.encode(texts=texts) - encoder.encode(texts=texts)).max() == 0
    assert prodlens.load_encoder(tmp_path / "zs", visual_weight=0.9).config.visual_weight == 0.9  # explicit wins
    record["weights"]["text"] = "0" * 16  # saved with other text weights than those installed
    (tmp_path / "zs" / MODEL_FILE).write_text(json.dumps(record))
    with pytest.raises(ProdlensError, match="text encoder was saved with weights 0000"):
        prodlens.load_encoder(tmp_path / "zs")


def test_a_trained_directory_is_the_same_model_wherever_it_is_loaded(tmp_path):
    trained_dir(tmp_path / "m")
    encoder = prodlens.load_encoder(tmp_path / "m")
    assert isinstance(encoder, CheckpointEmbedder) and encoder.feature_config.flip_tta
    encoder.save(tmp_path / "again")  # saving a loaded model gives the same identity
    again = prodlens.load_encoder(tmp_path / "again")
    assert model_id(again.signature()) == model_id(encoder.signature())
    trained_dir(tmp_path / "other", seed=1)  # other weights, same settings: another model
    assert model_id(prodlens.load_encoder(tmp_path / "other").signature()) != model_id(encoder.signature())
    with pytest.raises(ProdlensError, match="only flip_tta, runtime"):
        prodlens.load_encoder(tmp_path / "m", frames=2)
    ref = encoder.embed_queries([[p] for p in photos(2)], ["", ""], "live")
    assert np.abs(again.embed_queries([[p] for p in photos(2)], ["", ""], "live") - ref).max() == 0


def test_onnx_export_matches_torch_in_onnx_runtime(tmp_path):
    import onnx
    import onnxruntime as ort

    trained_dir(tmp_path / "m")
    out = tmp_path / "tower.onnx"
    cli = subprocess.run([str(BIN / "prodlens"), "export", "onnx", str(tmp_path / "m"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr
    encoder = prodlens.load_encoder(tmp_path / "m")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["prodlens.model_id"] == model_id(encoder.signature()) and meta["prodlens.flip_tta"] == "True"
    images = photos(4) + [_label("LUNARA")]  # a pack whose name is read: the graph's read input
    text = encoder.features.text_encoder.encode(["", "red apple", "", "oat milk", ""])
    has_text = np.array([False, True, False, True, False])
    ref = encoder.embed_queries([[im] for im in images], ["", "red apple", "", "oat milk", ""], "page")
    readings = [encoder.read_query([im]) for im in images]
    assert "LUNARA" in readings[-1].text and meta["prodlens.read"].startswith("char3gram")
    session = ort.InferenceSession(str(out))
    got = session.run(None, {"pixels": encoder.features.image_encoder.pixels(images),
                             "text": np.where(has_text[:, None], text, 0).astype(np.float32), "has_text": has_text,
                             "domain": np.zeros(5, np.int64),
                             "read": encoder.features.read_encoder.encode([r.text for r in readings])})[0]
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-4
    with pytest.raises(ProdlensError, match="zero-shot"):
        from prodlens.model.export import export_onnx

        export_onnx(prodlens.load_encoder(), tmp_path / "zs.onnx")


def _label(words: str):
    from PIL import Image, ImageDraw

    from prodlens.demo.synth import _font

    img = Image.new("RGB", (320, 320), (245, 240, 225))
    ImageDraw.Draw(img).text((20, 140), words, fill=(20, 60, 150), font=_font(44))
    return img
