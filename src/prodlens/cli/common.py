"""Shared pieces of the command line: the app, consoles, option sets and error printing."""
from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..catalog.config import SOURCES
from ..embed.config import EmbedConfig
from ..lazy import LazyModule
from ..errors import BadRecords
from .options import config_options
from ..progress import terminal_console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Unified cross-domain product embeddings: product pages, short videos and live streams.")
catalog_app = typer.Typer(no_args_is_help=True, help="Load, check and convert catalogues.")
app.add_typer(catalog_app, name="catalog")
# the heavy layers, imported when a command first uses them: `prodlens --help` loads no model library
api = LazyModule("prodlens.api")
catalogs = LazyModule("prodlens.catalog")
downloads = LazyModule("prodlens.catalog.download")
console = terminal_console()
err = terminal_console(stderr=True)

SourceArg = typer.Argument(..., help=f"catalogue layout: {', '.join(SOURCES)}")
RootOpt = typer.Option(..., "--root", help="catalogue root directory (for 'manifest': the manifest directory)")
SplitOpt = typer.Option(None, "--split", help="only this split (samples without a split, e.g. pages, are kept)")
# help beyond the comments in EmbedConfig: the choices a user has
EMBED_HELP = {"image_encoder": "image encoder: efficientnet-lite0, or hf:<name-or-path>",
              "text_encoder": "text encoder: minilm, e5-small, st:<name-or-path>, hf:<name-or-path>",
              "device": "torch device (cpu, cuda, cuda:1, mps)",
              "summarizer": "summariser for --speech summary: extractive, llm, smollm2-135m, gemma3-270m, hf:..., "
                            "http://host/v1::model"}


def _cache_options(func):
    """The feature-cache options; the command gets `cache`."""
    extra = [
        inspect.Parameter("cache_dir", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
            None, help="feature cache directory (default: $PRODLENS_CACHE or ~/.cache/prodlens)")),
        inspect.Parameter("no_cache", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, "--no-cache", help="do not read or write the feature cache")),
    ]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, cache=api.open_cache(kwargs.pop("cache_dir"), kwargs.pop("no_cache")), **kwargs)

    sig = inspect.signature(func)
    wrapper.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "cache"] + extra)
    return wrapper


def _model_options(func):
    """The encoder options (every EmbedConfig field, derived like every config's: cli.options) and the cache
    options; the command gets `config` and `cache`."""
    return config_options(EmbedConfig, help=EMBED_HELP)(_cache_options(func))


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(2)


def _print_bad(bad: BadRecords, limit: int = 50) -> None:
    if not len(bad):
        return
    table = Table(title=f"{len(bad)} bad record(s), skipped", title_justify="left", title_style="yellow")
    table.add_column("record")
    table.add_column("problem")
    table.add_column("stage")
    for b in list(bad)[:limit]:
        table.add_row(escape(b.record), escape(b.problem), b.stage)
    err.print(table)
    if len(bad) > limit:
        err.print(f"... and {len(bad) - limit} more")


