"""Training the unified product embedding on frozen-backbone features (COPE / AMPere losses, torchrun-ready)."""
from .data import GroupBatcher, collate
from .loss import MarginClassifier, ProductLoss, info_nce
from .report import comparison_table, write_training_report
from .trainer import TrainResult, Trainer

__all__ = ["GroupBatcher", "collate", "MarginClassifier", "ProductLoss", "info_nce", "comparison_table",
           "write_training_report", "TrainResult", "Trainer"]
