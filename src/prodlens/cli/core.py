"""Commands: catalogue → embed → evaluate, speech, training and the built-in demo."""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from ..asr.config import DEFAULT_ASR_MODEL
from ..catalog.config import DEFAULT_URL_PREFIX
from ..embed.config import SHARD_ROWS
from ..errors import ProdlensError
from ..media.config import DEFAULT_FRAMES
from ..ocr.config import DEFAULT_OCR_FRAMES, DEFAULT_OCR_MODEL
from .common import (RootOpt, SourceArg, SplitOpt, _fail, _model_options, _print_bad, api, app, catalog_app, catalogs,
                     console, downloads, err)


@catalog_app.command("validate")
def catalog_validate(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
                     no_media: bool = typer.Option(False, "--no-media", help="check records only, do not decode media"),
                     frames: int = typer.Option(DEFAULT_FRAMES, help="frames decoded per video")):
    """Check every record and decode every media file; list each bad record. Exit 1 if any is bad. A manifest is
    checked a batch at a time."""
    if source == "manifest":
        from ..catalog import open_manifest
        from ..catalog.validate import validate_manifest

        try:
            bad, count = validate_manifest(open_manifest(root, split), check_media=not no_media, frames=frames)
        except ProdlensError as e:
            _fail(str(e))
        console.print(f"[bold]{root}[/bold]: {count} samples checked")
        if len(bad):
            _print_bad(bad, limit=10_000)
            raise typer.Exit(1)
        console.print("[green]all records valid[/green]")
        return
    try:
        catalog = catalogs.load_catalog(source, root, split)
    except ProdlensError as e:
        _fail(str(e))
    bad = catalogs.validate_catalog(catalog, check_media=not no_media, frames=frames)
    summary = catalog.summary()
    console.print(f"[bold]{catalog.name}[/bold]: {summary['products']} products, {summary['samples']} samples "
                  f"(page {summary['page']}, video {summary['video']}, live {summary['live']})")
    if len(bad):
        _print_bad(bad, limit=10_000)
        raise typer.Exit(1)
    console.print("[green]all records valid[/green]")


@catalog_app.command("import")
def catalog_import(source: str = SourceArg, root: Path = RootOpt, out: Path = typer.Option(..., help="manifest dir"),
                   split: Optional[str] = SplitOpt,
                   media_dir: Optional[Path] = typer.Option(None, help="rope: folder of the downloaded images "
                                                                       "(default ROOT/media)")):
    """Convert a catalogue to the Parquet manifest (products.parquet, samples.parquet, catalog.json). ROPE is
    streamed (memory bounded by a bucket of rows, not the dataset); bad rows go to OUT/bad_records.jsonl."""
    try:
        if source == "rope":
            report = catalogs.import_rope(root, out, media_dir, (split,) if split else None)
            console.print(f"wrote manifest of {report.samples} samples ({report.by_domain['page']} pages, "
                          f"{report.by_domain['video']} videos, {report.by_domain['live']} live clips) of "
                          f"{report.products} products to {out}")
            if report.bad:
                err.print(f"[yellow]{report.bad} bad record(s) skipped[/yellow], listed in {out / 'bad_records.jsonl'}")
            return
        catalog = catalogs.load_catalog(source, root, split)
    except ProdlensError as e:
        _fail(str(e))
    catalogs.save_manifest(catalog, out)
    console.print(f"wrote manifest of {len(catalog.samples)} samples to {out}")
    _print_bad(catalog.bad)


@catalog_app.command("download")
def catalog_download(source: str = typer.Argument(..., help="rope"), root: Path = RootOpt,
                     media_dir: Path = typer.Option(..., help="folder the images are stored in"),
                     url_prefix: str = typer.Option(DEFAULT_URL_PREFIX, help="prefix the image names are fetched from"),
                     split: Optional[str] = SplitOpt,
                     workers: int = typer.Option(16, min=1, help="concurrent downloads"),
                     rate: Optional[float] = typer.Option(None, min=0.1, help="at most this many requests per second"),
                     retries: int = typer.Option(3, min=0, help="retries per image (timeouts, 5xx, truncated)"),
                     timeout: float = typer.Option(30.0, min=0.1, help="seconds per request")):
    """Fetch every image named in the page-image and frame lists. A rerun skips complete files; failures (404,
    timeout, not an image) are listed in MEDIA_DIR/download-failures.tsv and make the exit code 1."""
    if source != "rope":
        _fail(f"download knows the 'rope' layout, not {source!r}")
    splits = (split,) if split else None
    try:
        total = downloads.count_rope_images(root, splits)
        report = downloads.download_images(downloads.rope_image_names(root, splits), media_dir, url_prefix,
                                           workers=workers, rate=rate, retries=retries, timeout=timeout, total=total)
    except ProdlensError as e:
        _fail(str(e))
    console.print(f"downloaded {report.downloaded}, already there {report.skipped}, failed {report.failed} "
                  f"({report.bytes / 2**20:.1f} MB in {report.seconds:.1f} s)")
    if report.failed:
        from ..errors import BadRecords

        bad = BadRecords()
        for name, reason in report.failures:
            bad.add(name, reason, "download")
        _print_bad(bad, limit=20)
        err.print(f"all failures: {report.report_path}")
        raise typer.Exit(1)


@app.command("embed")
@_model_options
def embed_cmd(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
              out: Path = typer.Option(..., help="output: a Parquet file, or for 'manifest' a directory of shards"),
              checkpoint: Optional[Path] = typer.Option(None, help="trained run directory, .safetensors checkpoint or saved model directory (default: zero-shot)"),
              domains: Optional[str] = typer.Option(None, help="manifest: only these domains (comma-separated)"),
              shard_rows: int = typer.Option(SHARD_ROWS, min=1, help="manifest: rows of samples.parquet per shard"),
              *, config, cache):
    """Embed every sample of a catalogue (cached: a second run re-encodes nothing). A manifest is embedded in
    shards, streamed batch by batch, and under `torchrun --nproc_per_node N -m prodlens embed manifest ...` each
    process takes its share of the shards; a rerun resumes, skipping finished shards."""
    if source == "manifest":
        return _embed_manifest(root, split, domains, out, checkpoint, shard_rows, config, cache)
    try:
        catalog = catalogs.load_catalog(source, root, split)
        emb = api.embed(catalog, config, cache, checkpoint=checkpoint)
    except ProdlensError as e:
        _fail(str(e))
    emb.save(out)
    console.print(f"wrote {len(emb)} embeddings of dim {emb.dim} to {out} (model {emb.meta['model']}; cache hits "
                  f"{cache.hits}, misses {cache.misses})", markup=False)
    _print_bad(emb.bad)


def _embed_manifest(root, split, domains, out, checkpoint, shard_rows, config, cache) -> None:
    from ..catalog import open_manifest
    from ..distributed import local_device, setup_distributed
    from ..embed.shards import embed_manifest
    from ..model import load_encoder

    rank, world = setup_distributed()
    try:
        view = open_manifest(root, split, domains.split(",") if domains else None)
        if checkpoint is not None:
            encoder = load_encoder(checkpoint, device=local_device(config.device))
        else:
            encoder = load_encoder(replace(config, device=local_device(config.device)))
        run = embed_manifest(view, encoder, out, shard_rows=shard_rows, batch_rows=max(64, config.batch_size * 4),
                             rank=rank, world=world, cache=cache.path != ":memory:", progress=rank == 0)
    except ProdlensError as e:
        _fail(str(e))
    where = f"rank {rank} of {world}: " if world > 1 else ""
    console.print(f"{where}embedded {len(run.done_here)} shard(s) ({run.samples_here} samples, {run.bad_here} bad "
                  f"records), {run.skipped} already done; {run.shards} shards in the plan", markup=False)
    if run.complete and rank == 0:
        console.print(f"all shards written: {out / 'shards.json'}", markup=False)


@app.command("eval")
@_model_options
def eval_cmd(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
             json_out: Optional[Path] = typer.Option(None, "--json", help="write metrics as JSON here"),
             report: Optional[Path] = typer.Option(None, help="write report.md and plots in this directory"),
             compare_pages: bool = typer.Option(False, "--compare-pages",
                                                help="also evaluate image-only and text-only page embeddings"),
             compare_speech: bool = typer.Option(False, "--compare-speech",
                                                 help="AMPere's ablation: speech text none / raw ASR / gated / summary"),
             compare_ocr: bool = typer.Option(False, "--compare-ocr",
                                              help="also evaluate with nothing read in the pictures (ocr none / text)"),
             checkpoint: Optional[Path] = typer.Option(None, help="trained run directory, .safetensors checkpoint or saved model directory (default: zero-shot)"),
             *, config, cache):
    """Cross-domain retrieval (R@1/5/10, mAP) in every direction the catalogue has, plus one-shot classification."""
    from ..evaluate import print_results

    try:
        variants = {**(api.PAGE_VARIANTS if compare_pages else {}), **(api.SPEECH_VARIANTS if compare_speech else {}),
                    **(api.OCR_VARIANTS if compare_ocr else {})}
        result = api.evaluate_catalog(source, root, split, config, cache, variants=variants or None,
                                      report_dir=report, json_out=json_out, checkpoint=checkpoint)
    except ProdlensError as e:
        _fail(str(e))
    print_results(result, console)
    if json_out:
        console.print(f"metrics: {json_out}")
    if report:
        console.print(f"report: {report / 'report.md'}")


@app.command("asr")
def asr_cmd(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
            out: Path = typer.Option(..., help="manifest directory to write (the catalogue with ASR text filled in)"),
            model: str = typer.Option(DEFAULT_ASR_MODEL, help="auto (by the catalogue's language: Whisper tiny.en for English, "
                                      "multilingual Whisper base otherwise, both offline), tiny.en-offline, "
                                      "base-offline, a faster-whisper model name or a CTranslate2 directory"),
            language: Optional[str] = typer.Option(None, help="force a language (default: the catalogue's if Chinese, "
                                                   "else detected per clip)"),
            max_minutes: float = typer.Option(30.0, help="transcribe at most this much audio per sample"),
            overwrite: bool = typer.Option(False, "--overwrite", help="re-transcribe samples that have ASR text"),
            domains: str = typer.Option("video,live", help="domains to transcribe, comma-separated"),
            device: str = typer.Option("cpu"),
            cache_dir: Optional[Path] = typer.Option(None, help="cache directory (transcripts are cached)")):
    """Transcribe the speech of video / live samples; write a manifest with ASR text and transcripts.jsonl."""
    import json

    from ..asr import Transcriber, transcribe_catalog

    try:
        catalog = catalogs.load_catalog(source, root, split)
        transcriber = Transcriber(model, device=device, cache=api.open_cache(cache_dir), language=language,
                                  max_seconds=max_minutes * 60)
        updated, transcripts, bad = transcribe_catalog(catalog, transcriber, overwrite=overwrite,
                                                       domains=tuple(d.strip() for d in domains.split(",") if d.strip()))
    except ProdlensError as e:
        _fail(str(e))
    catalogs.save_manifest(updated, out)
    from .. import atomic
    from dataclasses import asdict

    lines = [json.dumps({"sample_id": sid, **asdict(t)}, ensure_ascii=False) for sid, t in transcripts.items()]
    atomic.write_text(out / "transcripts.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    spoken = sum(1 for t in transcripts.values() if t.text)
    console.print(f"transcribed {len(transcripts)} samples ({spoken} with speech); manifest: {out}")
    _print_bad(bad)


@app.command("ocr")
def ocr_cmd(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
            out: Path = typer.Option(..., help="JSON lines to write: per sample, the text read with boxes and scores"),
            model: str = typer.Option(DEFAULT_OCR_MODEL, help="pp-ocrv6-small (rapidocr), pp-ocrv6-tiny or "
                                      "pp-ocrv6-small-fp (faster-paddle)"),
            frames: int = typer.Option(DEFAULT_FRAMES, min=1, help="frames sampled per clip"),
            keyframes: int = typer.Option(DEFAULT_OCR_FRAMES, min=1, help="of those, the keyframes read"),
            domains: str = typer.Option("page,video,live", help="domains to read, comma-separated"),
            cache_dir: Optional[Path] = typer.Option(None, help="cache directory (readings are cached)")):
    """Read the text in every sample's pictures (page images, clips' keyframes): what `--ocr text` embeds."""
    import json

    from .. import atomic
    from ..embed import EmbedConfig, FeatureExtractor
    from ..errors import BadRecords

    try:
        catalog = catalogs.load_catalog(source, root, split).select(
            domains=[d.strip() for d in domains.split(",") if d.strip()])
        features = FeatureExtractor(EmbedConfig(ocr_model=model, frames=frames, ocr_frames=keyframes),
                                    api.open_cache(cache_dir))
        bad = BadRecords()
        readings = features.readings(catalog, bad=bad, progress=True)
    except ProdlensError as e:
        _fail(str(e))
    lines = [json.dumps({"sample_id": sid, "text": r.text, **r.to_dict()}, ensure_ascii=False)
             for sid, r in readings.items()]
    atomic.write_text(out, "\n".join(lines) + ("\n" if lines else ""))
    read = [(sid, r.text) for sid, r in readings.items() if r.text]
    console.print(f"read text in {len(read)} of {len(readings)} samples' pictures ({model}); readings: {out}")
    for sid, text in read[:5]:
        console.print(f"  {sid}: {text[:100]}", markup=False, highlight=False)
    _print_bad(bad)


@app.command("summarize")
def summarize_cmd(text: str = typer.Option(..., "--text", help="the transcript (ASR text); '-' reads stdin"),
                  title: str = typer.Option("", "--title", help="the sample's title, if any"),
                  backend: Optional[str] = typer.Option(None, help="extractive, llm (the offline LLM default), "
                                                        "smollm2-135m, gemma3-270m, llama:<file.gguf>, "
                                                        "hf:<name-or-path>[::file.gguf] or http://host:port/v1::<model> "
                                                        "(default: $PRODLENS_LLM, else extractive)"),
                  retries: int = typer.Option(2, min=0, help="re-asks when the output fails validation"),
                  cache_dir: Optional[Path] = typer.Option(None, help="cache directory (summaries are cached)")):
    """Turn a noisy transcript (+ title) into validated, grounded product facts, printed as JSON."""
    import json

    from ..errors import RecordError
    from ..text import Summarizer

    if text == "-":
        raw = sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            _fail(f"stdin is not valid UTF-8 (byte {e.start})")
    spec = backend or os.environ.get("PRODLENS_LLM", "extractive")
    try:
        result = Summarizer(spec, api.open_cache(cache_dir), retries=retries).summarize(text, title, "input")
    except (RecordError, ProdlensError) as e:
        _fail(str(e))
    print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))


@app.command("llm-serve")
def llm_serve_cmd(backend: str = typer.Option("gemma3-270m", help="gemma3-270m or hf:<name-or-path>[::file.gguf]"),
                  host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8088),
                  device: str = typer.Option("cpu")):
    """Serve a local LLM as an OpenAI-compatible chat endpoint (for `--backend http://HOST:PORT/v1::MODEL`)."""
    from ..text.backends import build_backend
    from ..text.serve import make_server

    try:
        model = build_backend(backend, device)
    except ProdlensError as e:
        _fail(str(e))
    if model is None or not hasattr(model, "generate"):
        _fail(f"{backend!r} is not a local model")
    server = make_server(model, host, port)
    err.print(f"serving {model.name} at http://{host}:{port}/v1 (model name: {model.name})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


@app.command("train")
def train_cmd(source: str = SourceArg, root: Path = RootOpt,
              split: str = typer.Option("train", help="split to train on"),
              val_split: Optional[str] = typer.Option("val", help="split to validate on (skipped if absent)"),
              out: Path = typer.Option(..., help="run directory: checkpoints, metrics.jsonl, report.md"),
              config: str = typer.Option("default", help="packaged config name or JSON file"),
              epochs: Optional[int] = typer.Option(None, min=1, help="override train.epochs"),
              resume: bool = typer.Option(False, "--resume", help="continue from OUT/last.safetensors"),
              max_steps: Optional[int] = typer.Option(None, min=1, help="stop after this many steps (a checkpoint is kept)"),
              max_minutes: Optional[float] = typer.Option(None, help="stop after this many minutes"),
              set_: list[str] = typer.Option([], "--set", help="override any config field: section.key=value, e.g. "
                                             "train.trainable_blocks=8 or model.visual.layers=2 (JSON values)"),
              cache_dir: Optional[Path] = typer.Option(None, help="feature cache directory"),
              no_cache: bool = typer.Option(False, "--no-cache")):
    """Train the unified product embedding (the image backbone's top blocks and the head). Runs under torchrun too."""
    from ..model.config import parse_overrides
    from ..train import comparison_table

    try:
        overrides = parse_overrides(set_)
    except ProdlensError as e:
        _fail(str(e))
    overrides.setdefault("train", {})
    if epochs:
        overrides["train"]["epochs"] = epochs
    if max_minutes:
        overrides["train"]["max_minutes"] = max_minutes
    try:
        result = api.train_catalog(source, root, out, split=split, val_split=val_split, config=config,
                                   overrides=overrides, cache=api.open_cache(cache_dir, no_cache), resume=resume,
                                   max_steps=max_steps)
    except (ProdlensError, ValueError) as e:
        _fail(str(e))
    if result.rank != 0:
        return
    if result.best.get("metrics"):
        console.print(comparison_table(result))
    state = "stopped early" if result.stopped_early else "done"
    console.print(f"{state}: step {result.step}/{result.total_steps} in {result.minutes:.1f} min; "
                  f"checkpoints and report in {out}")


@app.command("demo")
def demo_cmd(out: Path = typer.Option(Path("prodlens-demo"), help="where the catalogue and report go"),
             products: int = typer.Option(20, min=4, help="number of generated products"),
             seed: int = typer.Option(0),
             cache_dir: Optional[Path] = typer.Option(None, help="feature cache (default: OUT/cache)"),
             epochs: int = typer.Option(30, min=1, help="training epochs")):
    """Generate the built-in tri-domain catalogue (rendered products, MP4 videos and live clips), evaluate it
    zero-shot, train the unified embedding briefly, and evaluate the trained model on held-out clips."""
    from ..demo.run import run_demo

    run_demo(out, n_products=products, seed=seed, cache_dir=cache_dir, console=console, epochs=epochs)


@app.command("encoders")
def encoders_cmd():
    """List the image and text encoders that can be named on the command line."""
    from ..encoders import image_encoder_names, text_encoder_names

    console.print("image encoders: " + ", ".join(image_encoder_names()))
    console.print("text encoders:  " + ", ".join(text_encoder_names()))


