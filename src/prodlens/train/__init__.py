"""Training the unified product embedding on frozen-backbone features (COPE / AMPere losses, torchrun-ready)."""
from .checkpoint import CheckpointEmbedder, load_checkpoint, resolve_checkpoint
from .data import FeatureTable, GroupBatcher, build_feature_table, collate
from .loss import MarginClassifier, ProductLoss, info_nce
from .report import comparison_table, write_training_report
from .trainer import Trainer

__all__ = ["CheckpointEmbedder", "load_checkpoint", "resolve_checkpoint", "FeatureTable", "GroupBatcher",
           "build_feature_table", "collate", "MarginClassifier", "ProductLoss", "info_nce", "comparison_table",
           "write_training_report", "Trainer"]
