"""Shared pieces of the command line: the app, consoles, option sets and error printing."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import api
from ..catalog import SOURCES
from ..embed import EmbedConfig
from ..errors import BadRecords

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Unified cross-domain product embeddings: product pages, short videos and live streams.")
catalog_app = typer.Typer(no_args_is_help=True, help="Load, check and convert catalogues.")
app.add_typer(catalog_app, name="catalog")
console = Console()
err = Console(stderr=True)

SourceArg = typer.Argument(..., help=f"catalogue layout: {', '.join(SOURCES)}")
RootOpt = typer.Option(..., "--root", help="catalogue root directory (for 'manifest': the manifest directory)")
SplitOpt = typer.Option(None, "--split", help="only this split (samples without a split, e.g. pages, are kept)")


def _config(image_encoder: str, text_encoder: str, frames: int, batch_size: int, page_inputs: str, clip_inputs: str,
            visual_weight: float, device: str, speech: str = "raw", summarizer: str = "extractive",
            flip_tta: bool = False) -> EmbedConfig:
    try:
        return EmbedConfig(image_encoder=image_encoder, text_encoder=text_encoder, frames=frames,
                           batch_size=batch_size, page_inputs=page_inputs, clip_inputs=clip_inputs,
                           visual_weight=visual_weight, device=device, speech=speech, summarizer=summarizer,
                           flip_tta=flip_tta)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _model_options(func):
    """Shared encoder options, declared once."""
    import functools
    import inspect

    extra = [
        inspect.Parameter("image_encoder", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.image_encoder, help="image encoder: efficientnet-lite0, or hf:<name-or-path>")),
        inspect.Parameter("text_encoder", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.text_encoder, help="text encoder: minilm, e5-small, st:<name-or-path>, hf:<name-or-path>")),
        inspect.Parameter("frames", inspect.Parameter.KEYWORD_ONLY, annotation=int, default=typer.Option(
            EmbedConfig.frames, min=1, help="frames sampled per video / live sample")),
        inspect.Parameter("batch_size", inspect.Parameter.KEYWORD_ONLY, annotation=int, default=typer.Option(
            EmbedConfig.batch_size, min=1, help="images per forward pass")),
        inspect.Parameter("page_inputs", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.page_inputs, help="page embedding from: image, text or image+text")),
        inspect.Parameter("clip_inputs", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.clip_inputs, help="video/live embedding from: image, text or image+text")),
        inspect.Parameter("visual_weight", inspect.Parameter.KEYWORD_ONLY, annotation=float, default=typer.Option(
            EmbedConfig.visual_weight, min=0.0, max=1.0, help="share of the visual block in the similarity")),
        inspect.Parameter("speech", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.speech, help="speech text in video/live embeddings: raw (ASR), summary, or none")),
        inspect.Parameter("summarizer", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            EmbedConfig.summarizer,
            help="summariser for --speech summary: extractive, llm, smollm2-135m, gemma3-270m, hf:..., http://...")),
        inspect.Parameter("flip_tta", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            EmbedConfig.flip_tta, "--flip-tta", help="average each image's features with its mirror image's "
                                                     "(test-time augmentation; also for --checkpoint)")),
        inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
            "cpu", help="torch device (cpu, cuda, cuda:1, mps)")),
        inspect.Parameter("cache_dir", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
            None, help="feature cache directory (default: $PRODLENS_CACHE or ~/.cache/prodlens)")),
        inspect.Parameter("no_cache", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, "--no-cache", help="do not read or write the feature cache")),
    ]
    names = [p.name for p in extra]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        opts = {n: kwargs.pop(n) for n in names}
        config = _config(opts["image_encoder"], opts["text_encoder"], opts["frames"], opts["batch_size"],
                         opts["page_inputs"], opts["clip_inputs"], opts["visual_weight"], opts["device"],
                         opts["speech"], opts["summarizer"], opts["flip_tta"])
        cache = api.open_cache(opts["cache_dir"], opts["no_cache"])
        return func(*args, config=config, cache=cache, **kwargs)

    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name not in ("config", "cache")]
    wrapper.__signature__ = sig.replace(parameters=params + extra)
    return wrapper


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


