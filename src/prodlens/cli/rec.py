"""Commands: the LEARN recommender and its baselines (`prodlens rec ...`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .. import api
from ..rec.models import RecConfig
from ..errors import ProdlensError
from .common import _fail, _print_bad, app, console

rec_app = typer.Typer(no_args_is_help=True, help="Sequential recommendation: LEARN (frozen LLM content embeddings + "
                                                 "twin towers), SASRec and popularity.")
app.add_typer(rec_app, name="rec")

InteractionsOpt = typer.Option(..., "--interactions", help="user_id, item_id[, timestamp] rows, or user_id + item "
                                                           "sequence (TSV / CSV / Parquet)")
ItemsOpt = typer.Option(..., "--items", help="item_id, then text columns (title, brand, category, ...)")


def _metrics_table(result: dict) -> Table:
    table = Table(title=f"{result['model']}" + (f" ({result['encoder']})" if result.get("encoder") else "") +
                  f" on {result['dataset']['users']} users, {result['dataset']['items']} items: full ranking",
                  title_justify="left")
    for col in ("cases", "users", "R@10", "N@10", "R@20", "N@20"):
        table.add_column(col, justify="left" if col == "cases" else "right")
    rows = [("all (leave-one-out)", result["metrics"]), ("long-tail targets", result["long_tail"]),
            ("head targets", result["head"])]
    if "cold_start" in result and "R@10" in result["cold_start"]:
        rows.append(("cold-start targets (never trained on)", result["cold_start"]))
    for name, m in rows:
        table.add_row(name, str(m["n"]), *(f"{m[k]:.4f}" for k in ("R@10", "N@10", "R@20", "N@20")))
    return table


@rec_app.command("eval")
def rec_eval(interactions: Path = InteractionsOpt, items: Path = ItemsOpt,
             model: str = typer.Option(RecConfig.model, help="learn, sasrec or pop"),
             json_out: Optional[Path] = typer.Option(None, "--json", help="write the metrics here"),
             checkpoint: Optional[Path] = typer.Option(None, help="a trained run directory (default: train now)"),
             out: Optional[Path] = typer.Option(None, help="run directory for training (default: runs/rec-<model>)"),
             encoder: str = typer.Option(RecConfig.encoder, help="LEARN content encoder: minilm, e5-small, "
                                                                 "llm:gemma3-270m, llm:<name-or-path>, st:/hf:<name>, "
                                                                 "embeddings:<file.parquet>"),
             epochs: int = typer.Option(RecConfig.epochs, min=1,
                                        help="maximum epochs (early stopping on validation R@10)"),
             settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                                help="any other RecConfig field, e.g. --set dim=128 --set loss=sampled "
                                                     f"({', '.join(RecConfig.__dataclass_fields__)})"),
             item_map: Optional[Path] = typer.Option(None, help="original item id → index map (default: an "
                                                                "*.item2index file beside --items)"),
             no_cold_start: bool = typer.Option(False, "--no-cold-start", help="skip the cold-start protocol"),
             resume: bool = typer.Option(False, "--resume", help="continue an interrupted training run"),
             cache_dir: Optional[Path] = typer.Option(None, help="cache of item content vectors")):
    """Train (unless --checkpoint) and evaluate with leave-one-out full ranking, long-tail and cold-start views."""
    from ..rec import evaluate_recommender

    try:
        cfg = RecConfig(model=model, encoder=encoder, epochs=epochs).with_settings(settings)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from None
    run_dir = out or (None if model == "pop" else Path("runs") / f"rec-{model}")
    try:
        result = evaluate_recommender(interactions, items, cfg, run_dir, checkpoint, json_out, item_map,
                                      api.open_cache(cache_dir), cold_start=not no_cold_start, resume=resume)
    except ProdlensError as e:
        _fail(str(e))
    console.print(_metrics_table(result))
    if result.get("training", {}).get("run"):
        console.print(f"model: {result['training']['run']}/best.safetensors (best epoch {result['training']['best_epoch']})")
    if json_out:
        console.print(f"metrics: {json_out}")
    from ..errors import BadRecords

    bad = BadRecords()
    for b in result["skipped_records"]:
        bad.add(b["record"], b["problem"], b.get("stage", ""))
    _print_bad(bad)


@rec_app.command("recommend")
def rec_recommend(user: str = typer.Option(..., "--user", help="a user id from --interactions"),
                  checkpoint: Path = typer.Option(..., help="a trained run directory (rec eval --out)"),
                  interactions: Optional[Path] = typer.Option(None, "--interactions",
                                                              help="default: the histories saved with the run"),
                  items: Optional[Path] = typer.Option(None, "--items", help="default: the items saved with the run"),
                  k: int = typer.Option(10, "-k", "--k", min=1, max=1000),
                  item_map: Optional[Path] = typer.Option(None),
                  as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")):
    """Top-k items for a user's full history (items already seen are not recommended again)."""
    from ..rec.serve import Recommender

    try:
        rec = Recommender.from_files(checkpoint, interactions, items, item_map)
        hits = rec.recommend_user(user, k)
    except (ProdlensError, KeyError) as e:
        _fail(str(e).strip("'\""))
    if as_json:
        print(json.dumps({"user": user, "results": hits}, ensure_ascii=False, indent=2))
        return
    history = rec.history_of(user)
    console.print(f"user {escape(user)}: {len(history)} past items, latest: "
                  f"{escape(rec.titles.get(history[-1], history[-1]))}")
    table = Table(title=f"top {k}", title_justify="left")
    for col in ("#", "item", "score", "title"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), escape(h["item_id"]), f"{h['score']:.3f}", escape(h["title"][:90]))
    console.print(table)
