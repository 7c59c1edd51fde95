"""`prodlens rec eval` as a function: load → split → (content vectors) → train or load → full-ranking metrics on
the standard leave-one-out protocol (with long-tail / head breakdowns) and on the cold-start protocol."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import atomic
from ..cache import FeatureCache
from ..errors import ProdlensError
from ..runs import BEST
from .content import content_vectors
from .data import RecData, cold_start_split, item_frequencies, leave_one_out, load_rec_data, long_tail_items
from .evaluate import metrics_from_ranks, target_ranks
from .models import RecConfig
from .train import RecTrainer, load_rec_checkpoint


def _scores(cfg: RecConfig, data: RecData, split, run_dir: Path | None, checkpoint: Path | None,
            content: np.ndarray | None, progress: bool, resume: bool) -> tuple[np.ndarray, dict]:
    """Ranks of the split's test targets, and a note of how the model was obtained."""
    if cfg.model == "pop":
        popularity = item_frequencies(split.train, data.n_items).astype(np.float64)
        popularity += np.linspace(0, 1e-3, data.n_items)[::-1]  # deterministic tie-break: lower index first
        return target_ranks(None, split.test, data.n_items, popularity=popularity, progress=progress), {}
    if checkpoint is not None:
        model, saved_cfg, item_ids = load_rec_checkpoint(checkpoint)
        if item_ids != data.item_ids:
            raise ProdlensError(f"checkpoint {checkpoint} was trained on another item catalogue "
                                f"({len(item_ids)} items vs {data.n_items}); retrain or use the same files")
        info = {"checkpoint": str(checkpoint), "config": saved_cfg.to_dict()}
    else:
        if run_dir is None:
            raise ProdlensError("training needs an output directory")
        trainer = RecTrainer(cfg, data, split, run_dir, content, progress)
        summary = trainer.fit(resume=resume)
        model, saved_cfg = trainer.model, cfg
        info = {"run": str(run_dir), "best_epoch": summary["best"].get("epoch"), "epochs_run": summary["epochs_run"],
                "samples_per_s": round(summary["samples_per_s"], 1), "train_minutes": round(summary["minutes"], 2),
                "valid": {k: v for k, v in summary["best"].items() if k != "epoch"}}
    ranks = target_ranks(model, split.test, data.n_items, saved_cfg.max_len, progress=progress)
    return ranks, info


def evaluate_recommender(interactions: str | Path, items: str | Path, cfg: RecConfig,
                         out_dir: str | Path | None = None, checkpoint: str | Path | None = None,
                         json_out: str | Path | None = None, item_map: str | Path | None = None,
                         cache: FeatureCache | None = None, cold_start: bool = True, progress: bool = True,
                         resume: bool = False, data: RecData | None = None) -> dict:
    data = data or load_rec_data(interactions, items, item_map)
    out_dir = Path(out_dir) if out_dir else None
    checkpoint = Path(checkpoint) if checkpoint else None
    content = None
    if cfg.model == "learn" and checkpoint is None:
        content = content_vectors(data.item_ids, data.item_texts, cfg.encoder, cache, progress=progress)

    split = leave_one_out(data)
    ranks, info = _scores(cfg, data, split, out_dir, checkpoint, content, progress, resume)
    if out_dir is not None and checkpoint is None and cfg.model != "pop":
        from .serve import save_run_data

        save_run_data(data, out_dir)
    tail = long_tail_items(split.train, data.n_items)
    is_tail = np.array([t in tail for _, _, t in split.test])
    encoder = info.get("config", {}).get("encoder", cfg.encoder)  # a checkpoint knows its own encoder
    result = {"model": cfg.model, "encoder": encoder if cfg.model == "learn" else None,
              "dataset": data.summary(), "protocol": "leave-one-out by time, full ranking over all items, "
                                                    "history items masked",
              "metrics": metrics_from_ranks(ranks),
              "long_tail": {**metrics_from_ranks(ranks[is_tail]), "definition": "test targets in the bottom 80% of "
                                                                                "items by training frequency"},
              "head": metrics_from_ranks(ranks[~is_tail]), "training": info,
              "skipped_records": data.bad.as_dicts()}
    if cold_start:
        cold = cold_start_split(data, 0.1, seed=cfg.seed)
        cold_checkpoint = None
        if checkpoint is not None:
            cold_checkpoint = (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "cold-start"
            if not (cold_checkpoint / BEST).exists():
                cold_checkpoint = None
        if checkpoint is not None and cold_checkpoint is None and cfg.model != "pop":
            result["cold_start"] = {"skipped": f"no cold-start model beside {checkpoint} (rec eval without "
                                               "--checkpoint trains one)"}
        else:
            cold_ranks, cold_info = _scores(replace(cfg), data, cold, out_dir / "cold-start" if out_dir else None,
                                            cold_checkpoint, content, progress, resume)
            result["cold_start"] = {**metrics_from_ranks(cold_ranks), "definition": cold.protocol,
                                    "hidden_items": len(cold.cold_items), "training": cold_info}
    if json_out:
        atomic.write_json(json_out, result)
    if out_dir is not None:
        atomic.write_json(out_dir / "eval.json", result)
    return result
