"""Checkpoints (written atomically) and the embedder that serves a trained model."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..catalog import Catalog
from ..embed import EmbedConfig, Embeddings, FeatureCache, ProductEmbedder, model_id
from ..embed.cache import file_digest
from ..errors import BadRecords, ProdlensError
from ..model import ProductEmbeddingModel, RunConfig, create_model, run_config_from_dict
from .data import FeatureTable, build_feature_table


def _state_digest(state_dict: dict) -> str:
    """Content hash of a set of weights: the feature-cache key of a fine-tuned backbone."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (its best.pt, else last.pt) or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return path / name
        raise ProdlensError(f"no checkpoint (best.pt or last.pt) in {path}")
    if not path.exists():
        raise ProdlensError(f"checkpoint {path} not found")
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a torn or foreign file
        raise ProdlensError(f"cannot read checkpoint {path}: {e}") from e
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
        res = model(table.frames[sl, 0].to(device), table.frame_mask[sl].to(device), table.text[sl].to(device),
                    table.has_text[sl].to(device), domains[sl].to(device))
        out.append(res["embedding"].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


def table_embeddings(model: ProductEmbeddingModel, table: FeatureTable, meta: dict, device: str = "cpu") -> Embeddings:
    return Embeddings(list(table.sample_ids), list(table.product_ids), list(table.domains), list(table.splits),
                      embed_table(model, table, device=device), meta, table.bad)


class CheckpointEmbedder:
    """Embeds catalogues with a trained model: cached backbone features → the network → compact embeddings."""

    def __init__(self, checkpoint: str | Path, cache: FeatureCache | None = None, device: str = "cpu"):
        state = load_checkpoint(checkpoint)
        self.path = state["path"]
        self.run_config: RunConfig = run_config_from_dict(state["config"])
        self.feature_config = EmbedConfig(**state["features"])
        self.model = create_model(self.run_config.model)
        self.model.load_state_dict(state["model"])
        self.model.eval().to(device)
        self.device = device
        self.step = state.get("step")
        encoder, key = None, None
        if "backbone" in state:  # a fine-tuned image backbone: its features differ from the pretrained ones
            from ..encoders.image import EfficientNetLite0

            encoder = EfficientNetLite0(self.feature_config.image_size, device)
            encoder.model.load_state_dict(state["backbone"])
            encoder.model.eval()
            key = f"finetuned:{_state_digest(state['backbone'])}"
        self.features = ProductEmbedder(self.feature_config, cache or FeatureCache(None), encoder, key)
        self.name = f"trained[{Path(self.path).parent.name}/{Path(self.path).name}, step {self.step}]"
        self.sha256 = file_digest(Path(self.path))

    def signature(self) -> dict:
        """Identity of a trained model: its checkpoint's content (not its path: moving a run changes nothing)."""
        return {"kind": "trained", "checkpoint_sha256": self.sha256}

    @torch.inference_mode()
    def embed_query(self, frames, text: str = "", domain: str = "live") -> np.ndarray:
        """Embed an ad-hoc query (uploaded photo or clip frames, and/or text) like a catalogue sample of `domain`."""
        from ..media import uniform_positions
        from ..model import DOMAIN_INDEX

        max_frames = self.run_config.model.visual.max_frames
        frames = [frames[i] for i in uniform_positions(len(frames), max_frames)] if frames else []
        f = self.features.query_features(frames, text)
        dv, dt = self.run_config.model.image_feature_dim, self.run_config.model.text_feature_dim
        visual = torch.zeros((1, max_frames, dv))
        mask = torch.zeros((1, max_frames), dtype=torch.bool)
        if f.visual is not None:
            visual[0, :len(f.visual)] = torch.from_numpy(np.asarray(f.visual, np.float32))
            mask[0, :len(f.visual)] = True
        text_vec = torch.zeros((1, dt))
        if f.text is not None:
            text_vec[0] = torch.from_numpy(np.asarray(f.text, np.float32))
        out = self.model(visual.to(self.device), mask.to(self.device), text_vec.to(self.device),
                         torch.tensor([f.text is not None], device=self.device),
                         torch.tensor([DOMAIN_INDEX[domain]], device=self.device))
        return out["embedding"][0].float().cpu().numpy()

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
        return table_embeddings(self.model, table, meta, self.device)
