"""AMPere's ablation, measured: does a summary of noisy speech beat the raw ASR text in the product embedding?

A generated catalogue (the demo's generator) whose short videos and live clips carry a host speaking over the
product, with what real streams add (greetings, off-topic talk, prices and deals, comments read aloud, another product
named with its brand) — spoken by espeak-ng and transcribed by the real Whisper tiny.en. One clip per product and
domain is held out. For each speech setting — none / raw ASR / gated ASR / extractive summary / LLM summary / LLM
judge — held-out L2P and V2P (and P2L, P2V) are measured zero-shot and after training *with that setting*
(summaries are what the model trains on when summaries are the setting, as in AMPere).

LLM summaries go through llama.cpp's server with parallel slots when it is built (`make llama-server`), else the
in-process engine.

With `--attack-every 2` (the default), the same catalogue is generated a second time with every second held-out
clip's host also saying, once, an attack naming another product of the catalogue (a phrasing family the injection
detector never saw, or a plain lie; `prodlens.demo.synth.spoken_attack`): every setting is measured on the clean and
the attacked held-out clips, with the same trained model (training clips are identical). "gated" is the raw ASR
text less what the evidence rejects (EmbedConfig(speech="gated")).

    python bench/speech_ablation.py [--products 36] [--llm judge:qwen2.5-0.5b,gemma3-270m|none] [--epochs 30]
        [--attack-every 2] [--out runs/speech-ablation]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens import api, atomic  # noqa: E402
from prodlens.asr import Transcriber, transcribe_catalog  # noqa: E402
from prodlens.catalog import load_catalog  # noqa: E402
from prodlens.demo.synth import generate_demo_catalog  # noqa: E402
from prodlens.embed import EmbedConfig  # noqa: E402
from prodlens.text.llm import DEFAULT_LLM, OFFLINE_LLMS  # noqa: E402
from summarizer_throughput import DEFAULT_SERVER, start_server  # noqa: E402

DIRECTIONS = ("live2page", "video2page", "page2live", "page2video")
SHORT = {"live2page": "L2P", "video2page": "V2P", "page2live": "P2L", "page2video": "P2V"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=36)
    ap.add_argument("--llm", default=f"judge:qwen2.5-0.5b,{DEFAULT_LLM}",
                    help="LLM summariser backends, comma-separated; judge:<llm> chooses the product among the "
                         "evidence's candidates and keeps the extracted summary ('none': no LLM row)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--attack-every", type=int, default=2, help="attack every n-th held-out clip (0: no attacked set)")
    ap.add_argument("--out", type=Path, default=Path("runs/speech-ablation"))
    args = ap.parse_args()
    console = Console(width=160)
    start = time.time()
    cache = api.open_cache(args.out / "cache")
    catalog, test = spoken_catalog(args.out / "catalog", args, 0, cache, console)
    tests = {"clean": test}
    if args.attack_every:
        _, tests["attacked"] = spoken_catalog(args.out / "catalog-attacked", args, args.attack_every, cache, console)
    server = None
    settings = {"none": EmbedConfig(speech="none"), "raw ASR": EmbedConfig(speech="raw"),
                "gated ASR": EmbedConfig(speech="gated"),
                "extractive summary": EmbedConfig(speech="summary", summarizer="extractive")}
    for name in [n.strip() for n in args.llm.split(",") if n.strip() not in ("", "none")]:
        llm, judge = name.removeprefix("judge:"), name.startswith("judge:")
        if DEFAULT_SERVER.is_file() and llm in OFFLINE_LLMS and server is None:
            server, url = start_server(str(DEFAULT_SERVER), OFFLINE_LLMS[llm][0](), 8, os.cpu_count() or 2)
            llm = f"{url}/v1::{llm}"
        label = f"LLM judge ({name[6:]})" if judge else f"LLM summary ({name})"
        settings[label] = EmbedConfig(speech="summary", summarizer=("judge:" if judge else "") + llm)
    try:
        rows = run_settings(settings, catalog, tests, cache, args, console)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print_table(rows, args, console)
    atomic.write_json(args.out / "speech_ablation.json", {"products": args.products, "llm": args.llm,
                                                          "epochs": args.epochs, "attack_every": args.attack_every,
                                                          "rows": rows, "minutes": (time.time() - start) / 60})
    console.print(f"written {args.out / 'speech_ablation.json'} ({(time.time() - start) / 60:.1f} min)")


def spoken_catalog(catalog_dir: Path, args, attack_every: int, cache, console):
    """The generated catalogue with every clip's speech transcribed: (whole catalogue, its held-out clips)."""
    if not (catalog_dir / "splits.csv").exists():
        generate_demo_catalog(catalog_dir, n_products=args.products, videos_per_product=3, lives_per_product=3,
                              seed=args.seed, test_clip=2, speech=True, speech_domains=("video", "live"),
                              noisy_speech=True, attack_every=attack_every)
    catalog = load_catalog("folder", catalog_dir)
    catalog, _, _ = transcribe_catalog(catalog, Transcriber(cache=cache), domains=("video", "live"))
    spoken = [s for s in catalog.samples if s.asr_text]
    if not spoken:
        raise SystemExit("no speech was transcribed: is espeak-ng installed?")
    attacked = set()
    if (catalog_dir / "attacks.csv").is_file():
        attacked = {line.split(",")[0] for line in (catalog_dir / "attacks.csv").read_text().splitlines()[1:]}
        example = next((s.asr_text for s in spoken if s.sample_id in attacked), "")
        console.print(f"{len(attacked)} held-out clips attacked; e.g. [italic]{example}")
    else:
        console.print(f"{len(spoken)} clips with speech; e.g. [italic]{spoken[0].asr_text}")
    return catalog, catalog.select("test")


def run_settings(settings, catalog, tests, cache, args, console) -> dict:
    rows = {}
    for name, config in settings.items():
        console.rule(f"speech = {name}")
        run_dir = args.out / "runs" / name.replace(" (", "-").rstrip(")").replace(" ", "-")
        api.train_catalog("folder", catalog.root, run_dir, split="train", val_split=None, catalog=catalog,
                          cache=cache, features=config, overrides={"train": {
                              "epochs": args.epochs, "augment_views": 1, "batch_products": 32,
                              # frozen backbone features: what differs between rows is the speech, and six rows
                              # of partial fine-tuning would take hours on 2 cores
                              "backbone": "cached"}})
        rows[name] = {}
        for test_name, test in tests.items():
            zero = api.evaluate_catalog("folder", test.root, split="test", catalog=test, cache=cache, config=config,
                                        progress=False).metrics()
            trained = api.evaluate_catalog("folder", test.root, split="test", catalog=test, cache=cache,
                                           checkpoint=run_dir, progress=False).metrics()
            rows[name][test_name] = {
                "zero-shot": {SHORT[d]: zero[d]["R@1"] for d in DIRECTIONS if d in zero},
                "trained": {SHORT[d]: trained[d]["R@1"] for d in DIRECTIONS if d in trained}}
    return rows


def print_table(rows: dict, args, console) -> None:
    tests = list(next(iter(rows.values())))
    table = Table(title=f"speech ablation, held-out clips of {args.products} products (R@1; "
                        f"attacked: every {args.attack_every}. held-out clip)", title_justify="left")
    directions = ("L2P", "V2P") if len(tests) > 1 else ("L2P", "V2P", "P2L", "P2V")  # the rest: in the JSON
    table.add_column("speech")
    for stage in ("zero-shot", "trained"):
        for d in directions:
            for t in tests:
                table.add_column(f"{stage} {d}" + (f" {t}" if len(tests) > 1 else ""), justify="right")
    for name, r in rows.items():
        table.add_row(name, *[f"{r[t][stage].get(d, float('nan')):.3f}" for stage in ("zero-shot", "trained")
                              for d in directions for t in tests])
    console.print(table)


if __name__ == "__main__":
    main()
