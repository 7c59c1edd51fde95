"""Recommendation (LEARN): frozen content embeddings, a twin-tower sequential preference model, SASRec and
popularity baselines, leave-one-out and cold-start full-ranking evaluation."""
from ..lazy import exports

_WHERE = {
    "content": ['content_vectors'],
    "data": ['RecData', 'Split', 'cold_start_split', 'leave_one_out', 'load_rec_data', 'long_tail_items'],
    "evaluate": ['metrics_from_ranks', 'target_ranks'],
    "config": ['RecConfig'],
    "models": ['LEARN', 'Members', 'SASRec'],
    "registry": ['MODELS', 'REGISTRY', 'ModelSpec', 'RecModel', 'model_spec'],
    "run": ['evaluate_recommender'],
    "train": ['RecTrainer', 'fit_recommender', 'load_rec_checkpoint'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
