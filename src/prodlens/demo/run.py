"""`prodlens demo`: generate the built-in catalogue (with hosts speaking in the live clips), transcribe the speech,
evaluate zero-shot with AMPere's speech ablation, train briefly, and evaluate the trained model on held-out clips."""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import api
from ..asr import Transcriber, transcribe_catalog
from ..catalog import load_catalog, save_manifest, validate_catalog
from ..embed import EmbedConfig, FeatureExtractor
from ..evaluate import print_results
from .synth import generate_demo_catalog
from ..progress import terminal_console


DEMO_PRODUCTS = 20


def run_demo(out: Path, n_products: int = DEMO_PRODUCTS, seed: int = 0, cache_dir: Path | None = None,
             console: Console | None = None, epochs: int = 30, speech: bool = True):
    console = console or terminal_console()
    start = time.time()
    stage_start = [start]

    def stage(title: str) -> None:
        if stage_start[0] != start:
            console.print(f"[dim]({time.time() - stage_start[0]:.0f} s)[/dim]")
        stage_start[0] = time.time()
        console.rule(title)
    catalog_dir = out / "catalog"
    if (catalog_dir / "splits.csv").exists():
        console.print(f"using the catalogue already generated in {catalog_dir}")
    else:
        stage("1/5 generating a tri-domain catalogue")
        # one clip of each domain to train on and one held out per product: the demo's size is its cost (decoding,
        # speech recognition and the image encoder all scale with the clips), and minutes are the budget
        generate_demo_catalog(catalog_dir, n_products=n_products, videos_per_product=2, lives_per_product=2,
                              seed=seed, test_clip=1, speech=speech)
    catalog = load_catalog("folder", catalog_dir)
    catalog.name = "demo"
    bad = validate_catalog(catalog, check_media=True)
    s = catalog.summary()
    console.print(f"{s['products']} products: {s['page']} product pages, {s['video']} short videos, "
                  f"{s['live']} live clips; {len(bad)} bad records. Held out for testing: one video and one live "
                  "clip per product.")
    cache = api.open_cache(cache_dir or out / "cache")
    stage("2/5 speech recognition (faster-whisper, Whisper tiny.en)")
    catalog, transcripts, asr_bad = transcribe_catalog(catalog, Transcriber(cache=cache), domains=("live",))
    spoken = {sid: t.text for sid, t in transcripts.items() if t.text}
    save_manifest(catalog, out / "catalog-with-asr")
    if spoken:
        sid, text = next(iter(spoken.items()))
        console.print(f"{len(spoken)} clips with speech, e.g. {sid}: [italic]{text}[/italic]")
    else:
        console.print("[yellow]no speech in the clips (espeak-ng not installed?): the speech ablation is moot[/yellow]")
    stage("3/5 zero-shot: pretrained encoders; speech as none / raw ASR / extractive summary; text read or not")
    test = catalog.select("test")
    readings = FeatureExtractor(EmbedConfig(), cache).readings(test, progress=True)
    shown = [(sid, r.text) for sid, r in readings.items() if r.text]
    console.print(f"text read (OCR) in {len(shown)} of {len(test.samples)} held-out samples' pictures"
                  + (f", e.g. {shown[0][0]}: [italic]{shown[0][1][:80]}[/italic]" if shown else ""))
    zero = api.evaluate_catalog("folder", catalog_dir, split="test", catalog=test, cache=cache,
                                variants={**api.SPEECH_VARIANTS, **api.PAGE_VARIANTS, **api.OCR_VARIANTS},
                                report_dir=out / "report-zero-shot", json_out=out / "report-zero-shot" / "metrics.json")
    print_results(zero, console)
    stage("4/5 training the unified embedding on the training clips")
    result = api.train_catalog("folder", catalog_dir, out / "run", split="train", val_split=None, catalog=catalog,
                               # the head on cached features: minutes on a laptop (`prodlens train` fine-tunes)
                               # flip TTA off: on the demo's renders it would double the image encoder's work at
                               # evaluation; the held-out clips' features are then the zero-shot pass's, cached
                               overrides={"train": {"epochs": epochs, "augment_views": 1, "batch_products": 32,
                                                    "backbone": "cached"}, "model": {"flip_tta": False}},
                               cache=cache)
    console.print(f"trained {result.step} steps in {result.minutes:.1f} min")
    stage("5/5 trained model on the held-out clips")
    trained = api.evaluate_catalog("folder", catalog_dir, split="test", catalog=test, cache=cache,
                                   checkpoint=out / "run", report_dir=out / "report",
                                   json_out=out / "report" / "metrics.json")
    unread = api.evaluate_catalog("folder", catalog_dir, split="test", catalog=test, cache=cache, progress=False,
                                  checkpoint=out / "run", config=EmbedConfig(ocr="none"))
    table = Table(title="held-out clips: zero-shot vs trained; what reading the text in the pictures changes",
                  title_justify="left")
    for col in ("direction", "zero-shot R@1", "trained R@1, nothing read", "trained R@1", "zero-shot mAP",
                "trained mAP"):
        table.add_column(col, justify="left" if col == "direction" else "right")
    zm, tm, um = zero.metrics(), trained.metrics(), unread.metrics()
    for r in trained.directions:
        table.add_row(f"{r.short_name} ({r.name})", f"{zm[r.name]['R@1']:.3f}", f"{um[r.name]['R@1']:.3f}",
                      f"{tm[r.name]['R@1']:.3f}", f"{zm[r.name]['mAP']:.3f}", f"{tm[r.name]['mAP']:.3f}")
    console.print(table)
    if len(asr_bad):
        console.print(f"{len(asr_bad)} live clip(s) without usable audio")
    console.print(f"reports: {out / 'report-zero-shot' / 'report.md'}, {out / 'report' / 'report.md'}, "
                  f"{out / 'run' / 'report.md'}   ({time.time() - start:.0f} s)")
    return zero, trained
