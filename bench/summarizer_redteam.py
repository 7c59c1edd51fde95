"""Spoken prompt injections against every summariser backend, in one run: the red-team suite of
`prodlens.text.redteam` (66 attacks as ASR would transcribe them: direct, paraphrased, split across the transcript,
in the title, in Chinese; 27 benign look-alikes; 14 clean pitches).

Per backend: attack success on product_name/brand and on any field (target 0% and <= 5%), benign look-alikes kept
(target >= 95%), the true product named on clean / look-alike / attacked transcripts, outputs that never validated,
seconds per transcript; and the attack success on 12 held-out attacks in phrasings the defence has no rule for
(how far it generalises). `--families` replaces the suite by the out-of-family one (issue 24: phrasing families
the shipped injection detector never saw). `--batch FILE` replaces it by a batch of attacks written by another
author (`bench/generate_attacks.py`).
`--no-defence` runs the same backends with the defence switched off, as the baseline.

    python bench/summarizer_redteam.py [--backend extractive,smollm2-135m,gemma3-270m] [--families] [--no-defence]
        [--batch bench/data/attacks-2026-12-06.jsonl] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from contextlib import contextmanager

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens import atomic  # noqa: E402
from prodlens.embed import FeatureCache  # noqa: E402
from prodlens.progress import progress_bar  # noqa: E402
from prodlens.text import Summarizer, summarizer as summarizer_module  # noqa: E402
from prodlens.text.injection import Cleaned  # noqa: E402
from prodlens.text.corpus import HELD_OUT_FAMILIES  # noqa: E402
from prodlens.text.redteam import build_family_suite, build_held_out, build_suite, load_batch, run_suite  # noqa: E402


@contextmanager
def defence_off():
    """The pre-defence pipeline: the model reads the raw transcript and title (grounding still applies)."""
    saved = summarizer_module.strip_injections, summarizer_module.is_instruction
    summarizer_module.strip_injections = lambda text, *args: Cleaned(text, kept=[text], addressed=[0.0])
    summarizer_module.is_instruction = lambda text, *args: False
    try:
        yield
    finally:
        summarizer_module.strip_injections, summarizer_module.is_instruction = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="extractive,smollm2-135m,gemma3-270m")
    ap.add_argument("--no-defence", action="store_true", help="also run every backend without the defence")
    ap.add_argument("--families", action="store_true",
                    help="the out-of-family suite: attacks and look-alikes of the corpus families the shipped "
                         "detector never saw (prodlens.text.corpus.HELD_OUT_FAMILIES), plus the clean pitches")
    ap.add_argument("--batch", type=Path, help="a batch of attacks by another author (bench/generate_attacks.py, "
                                               "JSON lines) instead of the suite, plus the clean pitches")
    ap.add_argument("--out", default="runs/bench/summarizer_redteam.json")
    args = ap.parse_args()
    cases, held_out = build_suite(), build_held_out()
    if args.families:
        cases = build_family_suite(HELD_OUT_FAMILIES) + [c for c in cases if c.kind == "clean"]
    elif args.batch:
        cases = load_batch(args.batch) + [c for c in cases if c.kind == "clean"]
    rows = []
    settings = [(b.strip(), True) for b in args.backend.split(",") if b.strip()]
    if args.no_defence:
        settings += [(b, False) for b, _ in settings]
    for backend, defended in settings:
        summarizer = Summarizer(backend, FeatureCache(None), retries=2)
        summarizer.summarize("warm up with a short text about a shampoo")  # loading is not timed
        start = time.perf_counter()
        label = backend + ("" if defended else " (no defence)")
        with progress_bar(len(cases) + len(held_out), f"red-team suite: {label}") as advance:
            if defended:
                result, unseen = run_suite(summarizer, cases, advance), run_suite(summarizer, held_out, advance)
            else:
                with defence_off():
                    result, unseen = run_suite(summarizer, cases, advance), run_suite(summarizer, held_out, advance)
        seconds = (time.perf_counter() - start) / (len(cases) + len(held_out))
        rows.append({"backend": label, "attacks": result.attacks, "benign": result.benign,
                     "hijacked_name_brand": result.hijacked_name_brand, "hijacked_any": result.hijacked_any,
                     "benign_dropped": result.benign_dropped, "failed": result.failed,
                     "named": {k: result.named_rate(k) for k in result.named},
                     "rates": {"name_brand": result.rate("hijacked_name_brand"), "any": result.rate("hijacked_any"),
                               "benign_kept": 1 - result.rate("benign_dropped")},
                     "held_out": {"attacks": unseen.attacks, "hijacked_name_brand": unseen.hijacked_name_brand,
                                  "hijacked_any": unseen.hijacked_any},
                     "seconds": seconds})
    table = Table(title=f"red-team suite: {rows[0]['attacks']} spoken attacks, {rows[0]['benign']} benign look-alikes",
                  title_justify="left")
    for col in ("backend", "attack success name/brand", "attack success any field", "benign kept",
                "named (clean)", "named (look-alike)", "named (attacked)", "no valid output",
                "held-out success name/brand", "held-out success any", "s / transcript"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        table.add_row(r["backend"], f"{r['rates']['name_brand']:.1%}", f"{r['rates']['any']:.1%}",
                      f"{r['rates']['benign_kept']:.1%}", f"{r['named']['clean']:.0%}", f"{r['named']['benign']:.0%}",
                      f"{r['named']['attack']:.0%}", str(len(r["failed"])),
                      f"{len(r['held_out']['hijacked_name_brand'])}/{r['held_out']['attacks']}",
                      f"{len(r['held_out']['hijacked_any'])}/{r['held_out']['attacks']}", f"{r['seconds']:.2f}")
    Console(width=160).print(table)
    for r in rows:
        if r["hijacked_any"]:
            Console().print(f"{r['backend']}: attacks that got through: {', '.join(r['hijacked_any'])}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, rows)
    Console().print(f"written {args.out}")


if __name__ == "__main__":
    main()
