"""The trainable multi-branch product embedding model, its JSON configs, and inference with trained checkpoints."""
from .checkpoint import CheckpointEmbedder, embedder_for, load_checkpoint, load_encoder, resolve_checkpoint
from .config import (FusionConfig, ModelConfig, RunConfig, TrainConfig, VisualConfig, load_run_config,
                     packaged_configs, run_config_from_dict, with_encoder_widths)
from .network import DOMAIN_INDEX, ProductEmbeddingModel, create_model

__all__ = ["CheckpointEmbedder", "embedder_for", "load_checkpoint", "load_encoder", "resolve_checkpoint", "FusionConfig", "ModelConfig",
           "RunConfig", "TrainConfig", "VisualConfig", "load_run_config", "packaged_configs", "run_config_from_dict",
           "with_encoder_widths", "DOMAIN_INDEX", "ProductEmbeddingModel", "create_model"]
