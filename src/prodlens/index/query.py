"""The model that embeds queries for an index: rebuilt from the index's record of the model that made its vectors."""
from __future__ import annotations

from dataclasses import replace

from pathlib import Path

from ..cache import FeatureCache, open_cache
from ..embed import EmbedConfig, model_id
from ..errors import ProdlensError
from ..model import embedder_for
from .store import ModelMismatch


def query_model(record: dict, cache: FeatureCache | None = None, checkpoint: str | Path | None = None,
                device: str = "cpu"):
    """(model, its ProductEmbedder) for an index record: the zero-shot settings it names, or the trained checkpoint,
    whose content must still match the one that built the index."""
    cache = cache or open_cache()
    sig = record["signature"]
    if sig["kind"] == "zero-shot":
        if checkpoint is not None:
            raise ModelMismatch("this index was built by the zero-shot encoders, not a trained checkpoint")
        model, features = embedder_for(replace(EmbedConfig.saved(sig["config"]), device=device), cache, None)
    else:
        path = checkpoint or record.get("checkpoint")
        if not path:
            raise ModelMismatch("this index was built by a trained model: pass its checkpoint")
        try:
            model, features = embedder_for(None, cache, path, flip_tta=sig.get("settings", {}).get("flip_tta"))
        except ProdlensError as e:
            raise ModelMismatch(f"the checkpoint that built this index cannot be loaded ({e}); pass --checkpoint") from e
    if model_id(model.signature()) != record["model_id"]:
        raise ModelMismatch(f"{model.name} is not the model that built this index ({record.get('model')}): "
                            "its weights differ")
    return model, features
