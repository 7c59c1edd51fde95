"""Fit the speech anchor's gate (`prodlens.text.anchor`) on data, and ship it.

Data: a spoken catalogue generated with its own seed (`--seed 11`: other products, other voices than the
benchmarks' seed-3 catalogue, which the gate is measured on), every clip's speech transcribed by Whisper tiny.en and
its frames read by OCR; each clip once as spoken and once with three attacks inserted as augmentation — bare
claims or sentences of the injection corpus' *training* phrasing families (`text.corpus`; none of the benchmarks'
mechanisms), each naming another product of the catalogue. A clause's label: its nearest catalogue page (title and
description, by the text encoder) is the clip's own product. The gate is a class-balanced logistic regression over
`anchor.FEATURES`; its threshold is 0.5.

    python bench/fit_speech_anchor.py [--products 36] [--seed 11] [--out src/prodlens/text/speech_anchor.json]
"""
from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from prodlens import api  # noqa: E402
from prodlens.demo.synth import make_products  # noqa: E402
from prodlens.embed import EmbedConfig  # noqa: E402
from prodlens.embed.embedder import FeatureExtractor  # noqa: E402
from prodlens.progress import progress_bar  # noqa: E402
from prodlens.text import Summarizer  # noqa: E402
from prodlens.text.anchor import FEATURES, SHIPPED, SpeechAnchor  # noqa: E402
from prodlens.text.corpus import ATTACK_EN, CLAIMS_EN, HELD_OUT_FAMILIES  # noqa: E402
from prodlens.text.detector import fit_logistic  # noqa: E402
from speech_ablation import spoken_catalog  # noqa: E402

ATTACKS = 3  # attack sentences inserted into each clip's augmented copy


def augmentation(specs, clip, rng: random.Random, attacks: int = ATTACKS) -> str:
    """The clip's transcript with `attacks` sentences naming other products inserted: a training-family attack or a
    bare claim (`corpus.CLAIMS_EN`, which the injection detector mostly lets through: the gate must learn them)."""
    templates = [t for family, ts in sorted(ATTACK_EN.items()) if family not in HELD_OUT_FAMILIES for t in ts]
    parts = [p for p in (clip.asr_text or "").split(". ") if p]
    for _ in range(attacks):
        target = rng.choice([p for p in specs if p.product_id != clip.product_id])
        template = rng.choice(templates) if rng.random() < 0.3 else rng.choice(CLAIMS_EN)
        sentence = template.replace("{C}", rng.choice(CLAIMS_EN)).format(B=target.brand.lower(), P=target.product_type)
        parts.insert(rng.randint(1, max(1, len(parts))), sentence)
    return ". ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=36)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--work", type=Path, default=Path("runs/speech-anchor-fit"))
    args = ap.parse_args()
    console = Console(width=160)
    start = time.time()
    cache = api.open_cache(args.work / "cache")
    catalog, _ = spoken_catalog(args.work / "catalog", args, 0, cache, console)
    specs = make_products(args.products, args.seed)
    features = FeatureExtractor(EmbedConfig(speech="anchored"), cache)
    clips = [s for s in catalog.samples if s.asr_text]
    readings = features.readings(catalog, clips, progress=True)
    pages = [s for s in catalog.samples if s.domain == "page"]
    summarizer = Summarizer(cache=cache)
    encoder = summarizer.evidence.encoder
    page_vecs = np.asarray(encoder.encode([catalog.sample_text(p) for p in pages]), np.float32)
    page_vecs /= np.linalg.norm(page_vecs, axis=1, keepdims=True)
    page_products = np.array([p.product_id for p in pages])
    rng = random.Random(args.seed)
    xs, ys = [], []
    with progress_bar(2 * len(clips), "clause features") as advance:
        for clip in clips:
            read = readings[clip.sample_id].text if clip.sample_id in readings else None
            for transcript in (clip.asr_text, augmentation(specs, replace(clip), rng)):
                clauses, x = summarizer.anchored_clauses(transcript, clip.title, clip.sample_id, read=read or None)
                if clauses:
                    v = np.asarray(encoder.encode(clauses), np.float32)
                    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
                    ys.append(page_products[np.argmax(v @ page_vecs.T, axis=1)] == clip.product_id)
                    xs.append(x)
                advance(1)
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.float32)
    w, b = fit_logistic(x, y, l2=1e-3)
    anchor = SpeechAnchor(w, b, 0.5, "minilm", {
        "data": f"bench/fit_speech_anchor.py: generated spoken catalogue, {args.products} products, seed {args.seed}, "
                f"each clip as spoken and with {ATTACKS} claims or training-family attacks inserted",
        "clips": len(clips), "clauses": int(len(y)), "positive": float(y.mean())})
    kept = anchor.keeps(x)
    console.print(f"{len(y)} clauses ({y.mean():.1%} point to their own product); fitted: keeps "
                  f"{kept[y > 0].mean():.1%} of those and {kept[y == 0].mean():.1%} of the rest")
    for name, weight in zip(FEATURES, w):
        console.print(f"  {name:24s} {weight:+.3f}")
    anchor.save(args.out)
    console.print(f"written {args.out} (version {anchor.version}, {(time.time() - start) / 60:.1f} min)")


if __name__ == "__main__":
    main()
