"""The trainable multi-branch product embedding model, its JSON configs, and inference with trained checkpoints."""
from ..lazy import exports

_WHERE = {
    "checkpoint": ['CheckpointEmbedder', 'embedder_for', 'load_checkpoint', 'load_encoder', 'resolve_checkpoint'],
    "config": ['FusionConfig', 'ModelConfig', 'RunConfig', 'TrainConfig', 'VisualConfig', 'load_run_config',
               'packaged_configs', 'run_config_from_dict', 'with_encoder_widths'],
    "network": ['DOMAIN_INDEX', 'ProductEmbeddingModel', 'create_model'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
