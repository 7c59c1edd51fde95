"""The trainable multi-branch product embedding model and its JSON configs."""
from .config import (FusionConfig, ModelConfig, RunConfig, TrainConfig, VisualConfig, load_run_config,
                     packaged_configs, run_config_from_dict)
from .network import DOMAIN_INDEX, ProductEmbeddingModel, create_model

__all__ = ["FusionConfig", "ModelConfig", "RunConfig", "TrainConfig", "VisualConfig", "load_run_config",
           "packaged_configs", "run_config_from_dict", "DOMAIN_INDEX", "ProductEmbeddingModel", "create_model"]
