"""How often the summariser's output passes validation and grounding, and how much product information it keeps,
for the extractive fallback (the baseline) and an LLM backend, on the same transcripts in one run.

Transcripts: a generated host talks about a product among chatter (greeting, off-topic talk, another product,
sign-off); with --asr the text is spoken by espeak-ng and transcribed by the real Whisper model first, so it carries
real recognition errors. Per backend: share of outputs valid on the first try and after retries, share with
ungrounded values dropped, brand and product-type recall in the kept facts, the product *named* (product_name or
brand matches the truth: the brand as heard, within Whisper's misspellings, or every product-type word in the
product name), seconds per transcript.

    python bench/summarizer_quality.py [--n 20] [--asr] [--backend smollm2-135m,gemma3-270m:llama]
"""
from __future__ import annotations

import argparse
import difflib
import os
import random
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens.demo.synth import host_chatter, make_products, speak  # noqa: E402
from prodlens.embed import FeatureCache  # noqa: E402
from prodlens.errors import RecordError  # noqa: E402
from prodlens.progress import progress_bar  # noqa: E402
from prodlens.text import Summarizer  # noqa: E402


def transcripts(n: int, asr: bool) -> list[tuple[str, str, str]]:
    specs = make_products(n, seed=11)
    rng = random.Random(5)
    out = []
    transcriber = None
    if asr:
        from prodlens.asr import Transcriber

        transcriber = Transcriber()
    with progress_bar(n, "transcripts" + (" (spoken and transcribed)" if asr else "")) as advance:
        for i, spec in enumerate(specs):
            out.append(_transcript(spec, specs[(i + 1) % n], i, rng, transcriber))
            advance(1)
    return out


def _transcript(spec, other, i: int, rng: random.Random, transcriber) -> tuple[str, str, str]:
    """(brand, product type, text): the host's monologue, or what Whisper heard of it spoken by espeak-ng."""
    text = host_chatter(spec, other, rng)
    if transcriber is not None:
        voice = speak(text, i)
        if voice is None:
            raise SystemExit("--asr needs espeak-ng")
        audio, rate = voice
        audio16 = np.interp(np.arange(0, audio.size, rate / 16000), np.arange(audio.size), audio)
        text = transcriber.transcribe_audio(audio16.astype(np.float32), spec.product_id).text
    return spec.brand.lower(), spec.product_type.lower(), text


def heard_as(brand: str, text: str) -> bool:
    """The brand is in `text` as Whisper may spell it (the grounding's closeness: ratio >= 0.8 on one word)."""
    words = text.lower().split()
    spans = words + [" ".join(words[i:i + 2]) for i in range(len(words) - 1)] + ["".join(words[i:i + 2])
                                                                             for i in range(len(words) - 1)]
    return any(difflib.SequenceMatcher(None, brand, w).ratio() >= 0.8 for w in spans)


def evaluate(backend: str, items) -> dict:
    s = Summarizer(backend, FeatureCache(None), retries=2)
    s.summarize("warm up the model with a short text about a shampoo")  # loading is not timed
    valid_first = valid = dropped = brand_hits = type_hits = named = 0
    start = time.perf_counter()
    with progress_bar(len(items), f"summarising with {backend}") as advance:
        for brand, ptype, text in items:
            try:
                r = s.summarize(text)
            except RecordError:
                r = None  # not valid even after the retries: counted as a failure
            advance(1)
            if r is None:
                continue
            valid += 1
            valid_first += r.attempts == 1
            dropped += bool(r.dropped)
            kept = r.facts.as_text().lower()
            brand_hits += brand in kept
            type_hits += all(w in kept for w in ptype.split())
            named += heard_as(brand, f"{r.facts.brand} {r.facts.product_name}") or \
                all(w in r.facts.product_name.lower() for w in ptype.split())
    n = len(items)
    return {"valid_first": valid_first / n, "valid": valid / n, "dropped": dropped / max(valid, 1),
            "brand": brand_hits / n, "type": type_hits / n, "named": named / n, "seconds": (time.perf_counter() - start) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--asr", action="store_true", help="speak and transcribe the texts first")
    ap.add_argument("--backend", default="smollm2-135m:llama,gemma3-270m:llama",
                    help="comma-separated LLM backends compared with the extractive baseline")
    args = ap.parse_args()
    items = transcripts(args.n, args.asr)
    rows = [("extractive (baseline)", evaluate("extractive", items))]
    rows += [(b, evaluate(b, items)) for b in args.backend.split(",") if b.strip()]
    table = Table(title=f"summariser on {args.n} {'ASR ' if args.asr else ''}transcripts", title_justify="left")
    for col in ("backend", "valid 1st try", "valid", "had ungrounded values", "brand kept", "product type kept",
                "product named", "s / transcript"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for name, m in rows:
        table.add_row(name, f"{m['valid_first']:.0%}", f"{m['valid']:.0%}", f"{m['dropped']:.0%}", f"{m['brand']:.0%}",
                      f"{m['type']:.0%}", f"{m['named']:.0%}", f"{m['seconds']:.2f}")
    Console(width=130).print(table)
    base = rows[0][1]["seconds"]
    for name, m in rows[1:]:
        Console().print(f"{name} takes {m['seconds'] / base:.0f}x the time of the extractive baseline")


if __name__ == "__main__":
    main()
