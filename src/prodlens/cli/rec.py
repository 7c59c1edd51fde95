"""Commands: the LEARN recommender and its baselines (`prodlens rec ...`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..rec.config import RecConfig
from ..errors import ProdlensError
from .common import _fail, _print_bad, api, app, console

rec_app = typer.Typer(no_args_is_help=True, help="Sequential recommendation: LEARN (frozen LLM content embeddings + "
                                                 "twin towers), SASRec, BSARec and popularity.")
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
        rows.append(("cold-start targets (added after training)", result["cold_start"]))
    for name, m in rows:
        table.add_row(name, str(m["n"]), *(f"{m[k]:.4f}" for k in ("R@10", "N@10", "R@20", "N@20")))
    return table


@rec_app.command("eval")
def rec_eval(interactions: Path = InteractionsOpt, items: Path = ItemsOpt,
             model: str = typer.Option(RecConfig.model, help="learn, sasrec, bsarec or pop"),
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
    """Train (unless --checkpoint) and evaluate with leave-one-out full ranking, long-tail and cold-start views.
    Data-parallel training: `torchrun --nproc_per_node N -m prodlens rec eval ...`."""
    from ..rec import evaluate_recommender
    from ..rec.registry import model_spec

    try:
        cfg = RecConfig(model=model, encoder=encoder, epochs=epochs).with_settings(settings)
    except (ValueError, TypeError) as e:
        raise typer.BadParameter(str(e)) from None
    run_dir = out or (Path("runs") / f"rec-{model}" if model_spec(model).trainable else None)
    try:
        result = evaluate_recommender(interactions, items, cfg, run_dir, checkpoint, json_out, item_map,
                                      api.open_cache(cache_dir), cold_start=not no_cold_start, resume=resume)
    except ProdlensError as e:
        _fail(str(e))
    if "rank" in result:  # another torchrun process: rank 0 reports
        return
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
def rec_recommend(user: Optional[str] = typer.Option(None, "--user", help="a user id of the run's histories"),
                  history: Optional[str] = typer.Option(None, "--history",
                                                        help="instead of --user: item ids, comma-separated, oldest "
                                                             "first (items added after training included)"),
                  checkpoint: Path = typer.Option(..., help="a trained run directory (rec eval --out)"),
                  interactions: Optional[Path] = typer.Option(None, "--interactions",
                                                              help="histories to read --user from (default: the "
                                                                   "histories saved with the run)"),
                  k: int = typer.Option(10, "-k", "--k", min=1, max=1000),
                  as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")):
    """Top-k items after a user's full history or a given one (items already seen are not recommended again)."""
    from ..rec.serve import Recommender

    if (user is None) == (history is None):
        raise typer.BadParameter("give --user or --history (one of them)")
    try:
        rec = Recommender.from_run(checkpoint, interactions)
        items = rec.history_of(user) if user is not None else [i.strip() for i in history.split(",") if i.strip()]
        hits = rec.recommend_history(items, k)
    except (ProdlensError, KeyError) as e:
        _fail(str(e).strip("'\""))
    if as_json:
        print(json.dumps({"user": user, "history": items, "results": hits}, ensure_ascii=False, indent=2))
        return
    console.print(f"{'user ' + user if user else 'history'}: {len(items)} past items, latest: "
                  f"{rec.title(items[-1])}", markup=False)
    table = Table(title=f"top {k}", title_justify="left")
    for col in ("#", "item", "score", "title"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), escape(h["item_id"]), f"{h['score']:.3f}", escape(h["title"][:90]))
    console.print(table)


items_app = typer.Typer(no_args_is_help=True, help="A trained run's living item catalogue: add, remove, inspect.")
rec_app.add_typer(items_app, name="items")
RunArg = typer.Argument(..., help="a trained LEARN run directory (rec eval --out)")


@items_app.command("add")
def items_add(run: Path = RunArg,
              items: Path = typer.Option(..., "--items", help="item_id, then text columns (TSV / CSV / Parquet), as "
                                                              "the training items file; a known id gets its new text"),
              cache_dir: Optional[Path] = typer.Option(None, help="cache of item content vectors")):
    """Add items to a trained run without retraining: content encoder → item tower → recommendable at once, here
    and in every server of the run."""
    from ..rec.data import load_items
    from ..rec.serve import Recommender

    try:
        texts, bad = load_items(items, require_text=True)
        if not texts:
            raise ProdlensError(f"no item with an id and a text in {items}")
        rec = Recommender(run, histories={}, cache=api.open_cache(cache_dir))
        version = rec.add_items(list(texts), list(texts.values()), progress=True)
    except ProdlensError as e:
        _fail(str(e))
    console.print(f"added {len(texts)} item(s) to {run}: item table version {version}, {len(rec.table)} items "
                  "served", markup=False)
    _print_bad(bad)


@items_app.command("remove")
def items_remove(run: Path = RunArg, ids: list[str] = typer.Argument(..., help="item ids to retire")):
    """Retire items: never recommended again (histories that hold them still count them)."""
    from ..rec.serve import Recommender

    try:
        rec = Recommender(run, histories={})
        outcome = rec.remove_items(ids)
    except ProdlensError as e:
        _fail(str(e))
    already = outcome["already_removed"]
    console.print(f"removed {len(outcome['removed'])} item(s) from {run}"
                  + (f"; already removed: {', '.join(already[:10])}" if already else "")
                  + f": item table version {outcome['version']}, {len(rec.table)} items served", markup=False)


@items_app.command("info")
def items_info(run: Path = RunArg):
    """The item table's version, size and segments."""
    from ..rec.items import ItemTable
    from ..rec.serve import ITEMS_DIR

    try:
        table = ItemTable.open(run / ITEMS_DIR)
    except ProdlensError as e:
        _fail(str(e))
    print(json.dumps({"version": table.version, "items": len(table), "retired": len(table.row_of) - len(table),
                      "rows": table.n_rows, "segments": len(table.segments), "tower": table.tower,
                      "content_dim": table.manifest["content_dim"], "dim": table.manifest["dim"]}, indent=2))
