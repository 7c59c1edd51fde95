"""Recommendation (LEARN): frozen content embeddings, a twin-tower sequential preference model, SASRec and
popularity baselines, leave-one-out and cold-start full-ranking evaluation."""
from .content import content_vectors
from .data import RecData, Split, cold_start_split, leave_one_out, load_rec_data, long_tail_items
from .evaluate import metrics_from_ranks, target_ranks
from .models import LEARN, MODELS, Members, RecConfig, SASRec
from .run import evaluate_recommender
from .train import RecTrainer, fit_recommender, load_rec_checkpoint

__all__ = ["content_vectors", "RecData", "Split", "cold_start_split", "leave_one_out", "load_rec_data",
           "long_tail_items", "metrics_from_ranks", "target_ranks", "LEARN", "MODELS", "Members", "RecConfig", "SASRec",
           "evaluate_recommender", "RecTrainer", "fit_recommender", "load_rec_checkpoint"]
