"""Training the unified product embedding on frozen-backbone features (COPE / AMPere losses, torchrun-ready)."""
from ..lazy import exports

_WHERE = {
    "data": ['GroupBatcher', 'collate'],
    "loss": ['MarginClassifier', 'ProductLoss', 'info_nce'],
    "report": ['comparison_table', 'write_training_report'],
    "trainer": ['TrainResult', 'Trainer'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
