"""`prodlens rec eval` as a function: load → split → (content vectors) → train or load → full-ranking metrics on
the standard leave-one-out protocol (with long-tail / head breakdowns) and on the cold-start protocol, where a
second LEARN model is trained without 10% of the items, which are then added to the trained run (`add_items`, as a
user adds new products) and ranked among all items."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import atomic
from ..cache import FeatureCache
from ..distributed import setup_distributed
from ..errors import ProdlensError
from ..runs import BEST
from .content import content_vectors
from .data import (RecData, Split, cold_start_split, item_frequencies, leave_one_out, load_rec_data, long_tail_items,
                   without_hidden_items)
from .evaluate import metrics_from_ranks, target_ranks
from .models import RecConfig
from .registry import model_spec
from .serve import Recommender, save_run_data
from .train import fit_recommender, load_rec_checkpoint


def _popularity(data: RecData, split: Split) -> np.ndarray:
    popularity = item_frequencies(split.train, data.n_items).astype(np.float64)
    return popularity + np.linspace(0, 1e-3, data.n_items)[::-1]  # deterministic tie-break: lower index first


def _trained_model(cfg: RecConfig, data: RecData, split: Split, run_dir: Path | None, checkpoint: Path | None,
                   content: np.ndarray | None, progress: bool, resume: bool, loaded: tuple | None = None):
    """(model, its config, a note of how it was obtained): `loaded` from `checkpoint` (load_rec_checkpoint's answer),
    else trained into `run_dir`, whose item table and histories are then written."""
    if checkpoint is not None:
        model, saved_cfg, item_ids = loaded
        if item_ids != data.item_ids:
            raise ProdlensError(f"checkpoint {checkpoint} was trained on another item catalogue "
                                f"({len(item_ids)} items vs {data.n_items}); retrain or use the same files")
        if model_spec(saved_cfg.model).content and model.table is None:
            model.attach(content)
        return model, saved_cfg, {"checkpoint": str(checkpoint), "config": saved_cfg.to_dict()}
    if run_dir is None:
        raise ProdlensError("training needs an output directory")
    model, summary = fit_recommender(cfg, data, split, run_dir, content, progress, resume)
    if setup_distributed()[0] == 0:
        save_run_data(data, run_dir, model, content, keep_changes=resume)
    return model, cfg, {
        "run": str(run_dir), "best_epoch": summary["best"].get("epoch"), "epochs_run": summary["epochs_run"],
        "samples_per_s": round(summary["samples_per_s"], 1), "train_minutes": round(summary["minutes"], 2),
        "valid": {k: v for k, v in summary["best"].items() if k != "epoch"}}


def _cold_start(cfg: RecConfig, data: RecData, content: np.ndarray | None, out_dir: Path | None,
                checkpoint: Path | None, cache: FeatureCache | None, progress: bool, resume: bool) -> dict:
    """LEARN trained without the hidden items, which are then added to the trained run and ranked among all items:
    the number a user gets for products added after training."""
    cold = cold_start_split(data, 0.1, seed=cfg.seed)
    info = {"definition": cold.protocol, "hidden_items": len(cold.cold_items)}
    spec = model_spec(cfg.model)
    if not spec.trainable:
        return {**metrics_from_ranks(target_ranks(None, cold.test, data.n_items, popularity=_popularity(data, cold))),
                **info}
    if not spec.new_items:
        return {**info, "skipped": f"{cfg.model} has no content tower: items added after training cannot be placed"}
    if checkpoint is not None:
        run = (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "cold-start"
        if not (run / BEST).exists():
            return {**info, "skipped": f"no cold-start model beside {checkpoint} (rec eval without --checkpoint "
                                       "trains one)"}
        training = {"checkpoint": str(run)}
    else:
        run = out_dir / "cold-start"
        warm, warm_split = without_hidden_items(data, cold)
        keep = np.array([i not in cold.cold_items for i in range(data.n_items)])
        _, _, training = _trained_model(cfg, warm, warm_split, run, None, content[keep], progress, resume)
        if setup_distributed()[0] != 0:
            return {}  # rank 0 adds the items and evaluates
    recommender = Recommender(run, histories={}, cache=cache)
    hidden = sorted(cold.cold_items)
    new = [i for i in hidden if data.item_ids[i] not in recommender.table.row_of]  # an earlier eval added the rest
    if new:
        recommender.add_items([data.item_ids[i] for i in new], [data.item_texts[i] for i in new], content[new])
    cases = [([data.item_ids[i] for i in history], data.item_ids[target]) for _, history, target in cold.test]
    ranks = recommender.target_ranks(cases, progress=progress)
    return {**metrics_from_ranks(ranks), **info, "training": training}


def evaluate_recommender(interactions: str | Path, items: str | Path, cfg: RecConfig,
                         out_dir: str | Path | None = None, checkpoint: str | Path | None = None,
                         json_out: str | Path | None = None, item_map: str | Path | None = None,
                         cache: FeatureCache | None = None, cold_start: bool = True, progress: bool = True,
                         resume: bool = False, data: RecData | None = None) -> dict:
    data = data or load_rec_data(interactions, items, item_map)
    rank = setup_distributed()[0]
    progress = progress and rank == 0
    out_dir = Path(out_dir) if out_dir else None
    checkpoint = Path(checkpoint) if checkpoint else None
    spec = model_spec(cfg.model)
    if spec.trainable and checkpoint is None and out_dir is None:
        raise ProdlensError("training needs an output directory")
    loaded = None
    if checkpoint is not None and spec.trainable:
        loaded = load_rec_checkpoint(checkpoint)  # read once: it knows its own model, encoder and seed
        cfg = loaded[1]
        spec = model_spec(cfg.model)
    content = None
    if spec.content:
        content = content_vectors(data.item_ids, data.item_texts, cfg.encoder, cache, progress=progress)

    split = leave_one_out(data)
    info: dict = {}
    if not spec.trainable:
        ranks = target_ranks(None, split.test, data.n_items, popularity=_popularity(data, split), progress=progress)
    else:
        model, saved_cfg, info = _trained_model(cfg, data, split, out_dir, checkpoint, content, progress, resume,
                                                   loaded)
        if rank != 0:  # under torchrun: this process helped train; rank 0 evaluates and writes
            if cold_start:
                _cold_start(cfg, data, content, out_dir, checkpoint, cache, False, resume)
            return {"rank": rank, "training": info}
        ranks = target_ranks(model, split.test, data.n_items, saved_cfg.max_len, progress=progress)
    tail = long_tail_items(split.train, data.n_items)
    is_tail = np.array([t in tail for _, _, t in split.test])
    result = {"model": cfg.model, "encoder": cfg.encoder if spec.content else None,
              "dataset": data.summary(), "protocol": "leave-one-out by time, full ranking over all items, "
                                                    "history items masked",
              "metrics": metrics_from_ranks(ranks),
              "long_tail": {**metrics_from_ranks(ranks[is_tail]), "definition": "test targets in the bottom 80% of "
                                                                                "items by training frequency"},
              "head": metrics_from_ranks(ranks[~is_tail]), "training": info,
              "skipped_records": data.bad.as_dicts()}
    if cold_start:
        result["cold_start"] = _cold_start(cfg, data, content, out_dir, checkpoint, cache, progress, resume)
    if json_out:
        atomic.write_json(json_out, result)
    if out_dir is not None:
        atomic.write_json(out_dir / "eval.json", result)
    return result
