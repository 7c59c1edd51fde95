"""Checkpoints (written atomically) and the encoder that serves a trained model: inference lives with the model,
not with the training program."""
from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..catalog import Catalog
from ..embed import EmbedConfig, Embeddings, FeatureCache, FeatureExtractor, ProductEmbedder, model_id
from ..embed.embedder import with_read_block
from ..embed.saved import check_weights, is_model_dir, model_card, read_model_dir, read_model_record, write_model_dir
from ..embed.encoder import ProductEncoder
from ..errors import BadRecords, ProdlensError
from ..media import uniform_positions
from ..runs import LEGACY_SUFFIX, resolve_checkpoint
from ..tensorfile import SUFFIX, load_state
from .config import run_config_from_dict
from .features import FeatureTable, build_feature_table
from .network import DOMAIN_INDEX, ProductEmbeddingModel, create_model


def _state_digest(state_dict: dict) -> str:
    """Content hash of a set of weights: the feature-cache key of a fine-tuned backbone."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    state = load_state(path)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ProdlensError(f"{path} is not a prodlens checkpoint")
    state["path"] = str(path)
    return state


@torch.inference_mode()
def embed_table(model: ProductEmbeddingModel, table: FeatureTable, batch_size: int = 256,
                device: str = "cpu") -> np.ndarray:
    model.eval()
    out = []
    domains = table.domain_ids()
    for start in range(0, len(table), batch_size):
        sl = slice(start, start + batch_size)
        res = model(table.frames[sl, 0].float().to(device), table.frame_mask[sl].to(device),
                    table.text[sl].float().to(device),
                    table.has_text[sl].to(device), domains[sl].to(device))
        out.append(res["embedding"].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


def table_embeddings(model: ProductEmbeddingModel, table: FeatureTable, meta: dict, device: str = "cpu",
                     ocr_weight: float | None = None) -> Embeddings:
    """The network's embeddings of a table's rows; with `ocr_weight`, joined by the read-text block."""
    vectors = embed_table(model, table, device=device)
    if ocr_weight is not None:
        if table.read is None:
            raise ValueError("this feature table was built without reading its pictures (ocr='none')")
        vectors = with_read_block(vectors, table.read.float().numpy(), ocr_weight)
    return Embeddings(list(table.sample_ids), list(table.product_ids), list(table.domains), list(table.splits),
                      vectors, meta, table.bad)


class CheckpointEmbedder(ProductEncoder):
    """The trained encoder: cached backbone features → the network → compact embeddings (see ProductEncoder).
    Built from a training checkpoint or from a saved model directory (`save`); its identity is the digest of its
    weights and settings, so the two give the same model id."""

    def __init__(self, checkpoint: str | Path, cache: FeatureCache | None = None, device: str = "cpu",
                 flip_tta: bool | None = None, **inference):
        """`flip_tta`: average each image's backbone features with its mirror image's (test-time augmentation);
        None: as the model's own settings say. `inference`: other settings that change no trained weight
        (INFERENCE_SETTINGS: the runtime, what is read in the pictures and its weight)."""
        _only_inference(inference)
        path = Path(checkpoint)
        from_dir = is_model_dir(path)
        if from_dir:
            record, tensors = read_model_dir(path)
            if record.get("kind") != "trained":
                raise ProdlensError(f"{path} holds a {record.get('kind')} model, not a trained one")
            self.run_config = run_config_from_dict(record["config"])
            features = EmbedConfig.saved(record["settings"])
            network = {k: v for k, v in tensors.items() if not k.startswith("backbone.")}
            backbone = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
            self.path, self.trained_on = str(path), record.get("trained_on", {})
            recorded_weights = record["weights"]
        else:
            state = load_checkpoint(path)
            self.run_config = run_config_from_dict(state["config"])
            features = replace(EmbedConfig.saved(state["features"]), flip_tta=self.run_config.model.flip_tta)
            network, backbone = state["model"], state.get("backbone")
            self.path = state["path"]
            best = state.get("best") or {}
            self.trained_on = {"checkpoint": Path(self.path).name, "step": state.get("step"),
                               "products": len(state.get("products", [])),
                               "best validation step": best.get("step"), "best validation R@1": {
                                   k: round(v["R@1"], 4) for k, v in (best.get("metrics") or {}).items()}}
            recorded_weights = None
        if flip_tta is not None:
            inference["flip_tta"] = flip_tta
        try:
            self.feature_config = replace(features, **inference)
        except ValueError as e:
            raise ProdlensError(f"{path}: {e}") from None
        self.model = create_model(self.run_config.model)
        self.model.load_state_dict(network)
        self.model.eval().to(device)
        self.device = device
        self.step = self.trained_on.get("step")
        encoder, key = None, None
        if backbone:  # a fine-tuned image backbone: its features differ from the pretrained ones
            from ..encoders import build_image_encoder

            encoder = build_image_encoder(self.feature_config.image_encoder, device, self.feature_config.image_size)
            encoder.model.load_state_dict(backbone)
            encoder.model.eval()
            key = f"finetuned:{_state_digest(backbone)}"
        self._network_state = {**network, **{f"backbone.{k}": v for k, v in (backbone or {}).items()}}
        self._weights_digest = _state_digest(self._network_state)
        self.features = FeatureExtractor(self.feature_config, cache or FeatureCache(None), encoder, key)
        if recorded_weights is not None:
            check_weights(path, recorded_weights, self.features.weights())
        tta = ", flip TTA" if self.feature_config.flip_tta else ""
        where = Path(self.path).name if from_dir else f"{Path(self.path).parent.name}/{Path(self.path).name}"
        self.name = f"trained[{where}, step {self.step}{tta}]"

    def signature(self) -> dict:
        """Identity of a trained model: the content of its weights (network, fine-tuned backbone, the pretrained
        encoders) and every setting that decides its output — not its path, nor whether it is a checkpoint or a
        saved directory."""
        settings = self.features.config.signature()["config"]
        speech = self.features.speech_identity()
        return {"kind": "trained", "settings": settings, "network": asdict(self.run_config.model),
                "weights": {**self.features.weights(), "network": self._weights_digest},
                **({"speech": speech} if speech else {})}

    def save(self, path: str | Path) -> Path:
        """This model as a directory (weights in safetensors, settings in JSON, a model card): see
        `prodlens.embed.saved`. `prodlens.load_encoder(path)` loads it."""
        sig = self.signature()
        record = {"kind": "trained", "settings": sig["settings"], "config": self.run_config.to_dict(),
                  "weights": sig["weights"], "model_id": model_id(sig), "trained_on": self.trained_on}
        return write_model_dir(path, record, model_card(self.name, record, self.trained_on), self._network_state)

    @property
    def frames(self) -> int:
        return self.feature_config.frames

    def with_cache(self, cache: FeatureCache) -> "CheckpointEmbedder":
        other = copy.copy(self)
        other.features = self.features.with_cache(cache)
        return other

    @torch.inference_mode()
    def embed_queries(self, frames: list[list], texts: list[str], domain: str, readings: list | None = None) -> np.ndarray:
        """Ad-hoc queries (uploaded photos or clip frames, and/or text) embedded like samples of `domain`, in one
        forward pass."""
        max_frames = self.run_config.model.visual.max_frames
        frames = [[f[i] for i in uniform_positions(len(f), max_frames)] if f else [] for f in frames]
        feats = self.features.query_features(frames, texts, readings)
        n, dv, dt = len(feats), self.run_config.model.image_feature_dim, self.run_config.model.text_feature_dim
        visual = torch.zeros((n, max_frames, dv))
        mask = torch.zeros((n, max_frames), dtype=torch.bool)
        text_vec = torch.zeros((n, dt))
        has_text = torch.zeros(n, dtype=torch.bool)
        for i, f in enumerate(feats):
            if f.visual is not None:
                visual[i, :len(f.visual)] = torch.from_numpy(np.asarray(f.visual, np.float32))
                mask[i, :len(f.visual)] = True
            if f.text is not None:
                text_vec[i] = torch.from_numpy(np.asarray(f.text, np.float32))
                has_text[i] = True
        domains = torch.full((n,), DOMAIN_INDEX[domain], dtype=torch.long)
        out = self.model(visual.to(self.device), mask.to(self.device), text_vec.to(self.device),
                         has_text.to(self.device), domains.to(self.device))
        vectors = out["embedding"].float().cpu().numpy()
        if self.ocr_weight is None:
            return vectors
        return with_read_block(vectors, self.features.read_rows(feats), self.ocr_weight)

    def feature_table(self, catalog: Catalog, progress: bool = True) -> FeatureTable:
        return build_feature_table(catalog, self.features, self.run_config.model.visual.max_frames, views=1,
                                   progress=progress)

    def embed_catalog(self, catalog: Catalog, progress: bool = True) -> Embeddings:
        table = self.feature_table(catalog, progress)
        bad = BadRecords()
        bad.extend(catalog.bad)
        bad.extend(table.bad)
        table.bad = bad
        meta = {"model": self.name, "checkpoint": self.path, "catalog": catalog.name,
                "features": asdict(self.feature_config), "config": self.run_config.to_dict(),
                "signature": self.signature(), "model_id": model_id(self.signature())}
        return table_embeddings(self.model, table, meta, self.device, self.ocr_weight)

    @property
    def ocr_weight(self) -> float | None:
        """The read-text block's share of the similarity, None when this model reads nothing. The block joins the
        network's output as it is (it has no weights): text read off a pack matches letter for letter, which the
        network, trained on far fewer packs than a shop has, cannot learn to do as well."""
        return self.feature_config.read_weight


def embedder_for(config: EmbedConfig | None, cache: FeatureCache, checkpoint: str | Path | None,
                 flip_tta: bool | None = None):
    """(what embeds a catalogue, the FeatureExtractor behind it): the trained model of `checkpoint`, or
    the zero-shot encoders of `config`. A trained model embeds with the settings stored with it; what `config` sets
    away from the defaults (the flags a user gave) overrides them where it may (INFERENCE_SETTINGS for a trained
    model), and `flip_tta` overrides its test-time augmentation explicitly."""
    if checkpoint is not None:
        defaults = EmbedConfig()
        overrides = {k: v for k, v in asdict(config).items() if k not in ("device", "batch_size")
                     and v != getattr(defaults, k)} if config is not None else {}
        if flip_tta is not None:
            overrides["flip_tta"] = flip_tta
        device = config.device if config is not None else "cpu"
        model = load_model_dir(checkpoint, cache, device, **overrides) if is_model_dir(checkpoint) else \
            CheckpointEmbedder(checkpoint, cache, device, **overrides)
        return model, model.features
    embedder = ProductEmbedder(config, cache)
    return embedder, embedder.features


def load_encoder(spec: str | Path | EmbedConfig | None = None, cache: FeatureCache | None = None,
                 device: str = "cpu", **config) -> ProductEncoder:
    """The one way to get an encoder. `spec`:
    - None or "zero-shot": the offline default (EfficientNet-Lite0 + MiniLM), `config` overrides EmbedConfig fields;
    - "IMAGE+TEXT" encoder specs, e.g. "hf:google/vit-base-patch16-224+minilm" (any spec `prodlens encoders` lists);
    - an EmbedConfig;
    - a trained run directory or checkpoint file (.safetensors);
    - a saved model directory (`encoder.save(dir)`), zero-shot or trained: its settings, checked weights."""
    cache = cache if cache is not None else FeatureCache(None)
    if isinstance(spec, EmbedConfig):
        return ProductEmbedder(spec, cache)
    text = str(spec) if spec is not None else "zero-shot"
    if spec is not None and is_model_dir(text):
        return load_model_dir(text, cache, device, **config)
    if isinstance(spec, Path) or text.endswith((SUFFIX, LEGACY_SUFFIX)) or Path(text).is_dir():
        return CheckpointEmbedder(spec, cache, device, **config)
    if text != "zero-shot":
        image, sep, text_encoder = text.rpartition("+")
        if not sep or not image:
            raise ProdlensError(f"encoder spec {text!r}: expected 'zero-shot', 'IMAGE+TEXT' encoder specs, or a "
                                "trained run directory / .safetensors checkpoint")
        config = {"image_encoder": image, "text_encoder": text_encoder, **config}
    try:
        return ProductEmbedder(EmbedConfig(device=device, **config), cache)
    except (TypeError, ValueError) as e:
        raise ProdlensError(f"encoder settings: {e}") from None


def load_model_dir(path: str | Path, cache: FeatureCache, device: str = "cpu", **overrides) -> ProductEncoder:
    """A saved model directory: the trained model it holds, or the zero-shot encoders of its settings (`overrides`
    may change a setting explicitly; the recorded weights must still be the ones the specs resolve to)."""
    record = read_model_record(path)
    if record.get("kind") == "trained":
        return CheckpointEmbedder(path, cache, device, **overrides)
    try:
        encoder = ProductEmbedder(replace(EmbedConfig.saved(record["settings"]), **overrides, device=device), cache)
    except (TypeError, ValueError) as e:
        raise ProdlensError(f"{path}: settings {e}") from None
    check_weights(Path(path), record["weights"], encoder.signature()["weights"])
    return encoder


# what may change when a trained model embeds: none of them touches a trained weight
INFERENCE_SETTINGS = ("flip_tta", "runtime", "ocr", "ocr_model", "ocr_frames", "ocr_weight", "ocr_dim")


def _only_inference(settings: dict) -> None:
    unknown = set(settings) - set(INFERENCE_SETTINGS)
    if unknown:
        raise ProdlensError(f"a trained encoder embeds with its own settings; only {', '.join(INFERENCE_SETTINGS)} "
                            f"can be set (got {', '.join(sorted(unknown))})")
