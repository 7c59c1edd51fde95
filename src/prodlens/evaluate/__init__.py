"""Evaluation: cross-domain retrieval (R@K, mAP), one-shot classification, tables and reports."""
from ..lazy import exports

_WHERE = {
    "classification": ['one_shot_accuracy'],
    "report": ['ZERO_SHOT_NOTE', 'print_results', 'results_table', 'write_report'],
    "retrieval": ['RetrievalResult', 'all_directions', 'evaluate_direction', 'retrieval_metrics'],
    "runner": ['EvalResult', 'evaluate_embeddings'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
