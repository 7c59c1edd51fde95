"""The text read in a clip's frames as evidence for its speech: how often does a seller's spoken attack (naming
another product of the catalogue) still steer the gated speech or the extractive summary, with and without it?

The attacked catalogue of bench/speech_ablation.py (the demo's generator: hosts speaking over the product, every
second held-out clip's host also naming another product once, in a phrasing family the injection detector never
saw or as a plain lie; packs and product cards carry the brand and variant printed), transcribed by Whisper
tiny.en. For every held-out clip with speech, the gate (`speech=gated`) and the extractive summariser run on its
transcript without and with `read` = the text OCR read on its keyframes. Counted:
- attacked clips: *steered* when the attacker's brand reaches the output (the gated text, or the summary's product
  name / brand), *kept* when the clip's own brand does;
- clean clips: *kept* (the true brand survives: reading must not veto the product).

    python bench/ocr_evidence.py [--products 36] [--out runs/speech-ablation]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens import api, atomic  # noqa: E402
from prodlens.embed import EmbedConfig, FeatureExtractor  # noqa: E402
from prodlens.encoders.ngrams import WORD, fold  # noqa: E402
from prodlens.text import Summarizer  # noqa: E402
from prodlens.text.evidence import _misread, _unconfused  # noqa: E402
from speech_ablation import spoken_catalog  # noqa: E402


def names(brand: str, text: str) -> bool:
    """Whether `text` says the made-up `brand` as ASR spells it: one of its words within the evidence's misread
    distance (Whisper writes "Rokalu" as "Rocalu")."""
    return any(_misread(_unconfused(brand), _unconfused(w)) for w in WORD.findall(fold(text)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=36)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--attack-every", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/speech-ablation"))
    args = ap.parse_args()
    console = Console(width=150)
    cache = api.open_cache(args.out / "cache")
    catalog, test = spoken_catalog(args.out / "catalog-attacked", args, args.attack_every, cache, console)
    with open(args.out / "catalog-attacked" / "attacks.csv", newline="") as f:
        targets = {row[0]: row[1] for row in list(csv.reader(f))[1:]}
    clips = [s for s in test.samples if s.asr_text and s.domain in ("video", "live")]
    readings = FeatureExtractor(EmbedConfig(), cache).readings(test, clips, progress=True)
    brand = {p.product_id: p.title.split()[0].lower() for p in catalog.products.values()}
    summarizer = Summarizer("extractive", cache)
    rows = []
    for evidence in ("speech only", "speech + text read in the frames"):
        items = [(s.sample_id, s.asr_text, s.title,
                  None, readings[s.sample_id].text or None if evidence != "speech only" and s.sample_id in readings
                  else None) for s in clips]
        gated, _ = summarizer.gate_many(items)
        summaries, _ = summarizer.summarize_many(items, progress=False)
        for stage, output in (("gated speech", {k: v.lower() for k, v in gated.items()}),
                              ("extractive summary", {k: f"{v.facts.product_name} {v.facts.brand}".lower()
                                                      for k, v in summaries.items()})):
            attacked = [s for s in clips if s.sample_id in targets]
            clean = [s for s in clips if s.sample_id not in targets]
            steered = sum(names(brand[targets[s.sample_id]], output.get(s.sample_id, "")) for s in attacked)
            kept_attacked = sum(names(brand[s.product_id], output.get(s.sample_id, "")) for s in attacked)
            kept_clean = sum(names(brand[s.product_id], output.get(s.sample_id, "")) for s in clean)
            rows.append({"evidence": evidence, "stage": stage, "attacked": len(attacked), "steered": steered,
                         "kept_attacked": kept_attacked, "clean": len(clean), "kept_clean": kept_clean})
    read = sum(bool(readings.get(s.sample_id) and readings[s.sample_id].text) for s in clips)
    shows_brand = sum(names(brand[s.product_id], readings[s.sample_id].text) for s in clips if s.sample_id in readings)
    heard = sum(names(brand[s.product_id], s.asr_text) for s in clips)
    table = Table(title=f"spoken attacks vs the text in the frames: {len(clips)} held-out clips with speech "
                        f"(text read in {read}, the brand among it in {shows_brand}; the brand heard in {heard})",
                  title_justify="left")
    for col in ("evidence", "output", "attacked clips", "steered", "own brand kept (attacked)",
                "clean clips", "own brand kept (clean)"):
        table.add_column(col, justify="left" if col in ("evidence", "output") else "right")
    for r in rows:
        table.add_row(r["evidence"], r["stage"], str(r["attacked"]), f"{r['steered']} ({r['steered'] / r['attacked']:.0%})",
                      f"{r['kept_attacked'] / r['attacked']:.0%}", str(r["clean"]), f"{r['kept_clean'] / r['clean']:.0%}")
    console.print(table)
    atomic.write_json(args.out / "ocr_evidence.json", {"clips": len(clips), "read": read, "brand_read": shows_brand,
                                                       "brand_heard": heard, "rows": rows})
    console.print(f"written {args.out / 'ocr_evidence.json'}")


if __name__ == "__main__":
    main()
