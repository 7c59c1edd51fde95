"""Evaluation: cross-domain retrieval (R@K, mAP), one-shot classification, tables and reports."""
from .classification import one_shot_accuracy
from .report import ZERO_SHOT_NOTE, print_results, results_table, write_report
from .retrieval import RetrievalResult, all_directions, evaluate_direction, retrieval_metrics
from .runner import EvalResult, evaluate_embeddings

__all__ = ["one_shot_accuracy", "ZERO_SHOT_NOTE", "print_results", "results_table", "write_report", "RetrievalResult",
           "all_directions", "evaluate_direction", "retrieval_metrics", "EvalResult", "evaluate_embeddings"]
