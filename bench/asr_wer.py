"""Speech recognition quality of the offline Whisper models, on real recorded speech and on generated Chinese pitches.

- English, real: the LibriVox recordings (Sense and Sensibility, read aloud) with their transcripts, and the
  "cards" recordings, that pocketsphinx's source distribution ships as test data. Its sdist is fetched once from
  PyPI (pinned version and sha256) into the prodlens cache. Corpus WER, after lower-casing, dropping punctuation,
  and writing small numbers as words.
- Chinese, generated: product pitches from the summariser corpus's Chinese host-speech templates, spoken by
  espeak-ng's Mandarin voice (from pinyin, `pypinyin`). CER (characters, punctuation out) and whether the language was detected as Chinese.

Per model: WER / CER, and seconds of compute per second of audio (real-time factor). The baseline is tiny.en.

`model@lang` fixes the language instead of detecting it (`base-offline@zh`: what a catalogue known to be Chinese
gets). Whisper may write traditional characters: hypotheses are converted to simplified ones (OpenCC) first.

    python bench/asr_wer.py [--models tiny.en-offline,base-offline,base-offline@zh] [--zh 12]
        [--out runs/bench/asr_wer.json]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import tarfile
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prodlens import atomic  # noqa: E402
from prodlens.asr import Transcriber  # noqa: E402
from prodlens.asr.metrics import error_rate, normalise_chars, normalise_words  # noqa: E402
from prodlens.cache import FeatureCache, default_cache_dir  # noqa: E402
from prodlens.demo.synth import speak  # noqa: E402
from prodlens.media import extract_audio  # noqa: E402
from prodlens.progress import progress_bar  # noqa: E402
from prodlens.text.corpus import BENIGN_ZH, HOST_ZH  # noqa: E402

POCKETSPHINX = ("https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/"
                "pocketsphinx-5.1.1.tar.gz",
                "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355")


def pocketsphinx_data() -> Path:
    """pocketsphinx 5.1.1's test/data (LibriVox and cards recordings), downloaded and checked once."""
    target = default_cache_dir() / "data" / "pocketsphinx-5.1.1"
    if (target / "librivox" / "fileids").is_file():
        return target
    url, sha = POCKETSPHINX
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "pocketsphinx.tar.gz"
        urllib.request.urlretrieve(url, archive)
        got = hashlib.sha256(archive.read_bytes()).hexdigest()
        if got != sha:
            raise SystemExit(f"pocketsphinx sdist has sha256 {got}, expected {sha}")
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and
                       m.name.startswith(("pocketsphinx-5.1.1/test/data/librivox/", "pocketsphinx-5.1.1/test/data/cards/"))]
            tar.extractall(tmp, members=members, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tmp) / "pocketsphinx-5.1.1" / "test" / "data"
        os.replace(staged, target) if not target.exists() else None
    return target


def english_sets(data: Path) -> dict[str, list[tuple[Path, str]]]:
    librivox = data / "librivox"
    lv = [(librivox / f"{i}.wav", (librivox / f"{i}.txt").read_text().strip())
          for i in (librivox / "fileids").read_text().split()]
    cards = []
    for line in (data / "cards" / "cards.transcription").read_text().splitlines():
        words, _, fid = line.rpartition("(")
        cards.append((data / "cards" / f"{fid.strip(' )')}.wav", words.replace("<s>", "").replace("</s>", "").strip()))
    return {"LibriVox": lv, "cards": cards}


def chinese_pitches(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b, p = rng.choice(HOST_ZH)
        clauses = [rng.choice(BENIGN_ZH["zh-chatter"]), rng.choice(BENIGN_ZH["zh-product-talk"]),
                   rng.choice(BENIGN_ZH["zh-product-talk"]), rng.choice(BENIGN_ZH["zh-viewer-directive"])]
        ob, op = rng.choice([h for h in HOST_ZH if h[0] != b])
        out.append("，".join(c.format(b=b, p=p, ob=ob, op=op) for c in clauses) + "。")
    return out


def pinyin(text: str) -> str:
    """Pinyin with tone numbers: what espeak-ng's Mandarin voice reads (its dictionary here has no characters)."""
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)).replace("，", ",").replace("。", ".")


def simplified(text: str) -> str:
    from opencc import OpenCC

    return OpenCC("t2s").convert(text)


def spoken_chinese(texts: list[str], folder: Path) -> list[tuple[Path, str]]:
    out = []
    for i, text in enumerate(texts):
        voice = speak(pinyin(text), voice="cmn-latn-pinyin")
        if voice is None:
            raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
        path = folder / f"zh{i:02d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(voice[1])
            w.writeframes((np.clip(voice[0], -1, 1) * 32767).astype(np.int16).tobytes())
        out.append((path, text))
    return out


def run(model: str, items: list[tuple[Path, str]], label: str) -> tuple[list, float, float]:
    """(transcripts with their languages, seconds of audio, seconds of compute)."""
    name, _, language = model.partition("@")
    transcriber = Transcriber(name, cache=FeatureCache(None), language=language or None)
    transcriber.model  # loading is not timed
    out, audio_s, compute_s = [], 0.0, 0.0
    with progress_bar(len(items), f"{model}: {label}") as advance:
        for path, ref in items:
            audio = extract_audio(path, 16_000)
            start = time.perf_counter()
            t = transcriber.transcribe_audio(audio, str(path))
            compute_s += time.perf_counter() - start
            audio_s += audio.size / 16_000
            out.append((ref, t.text, t.language))
            advance(1)
    return out, audio_s, compute_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny.en-offline,base-offline,base-offline@zh")
    ap.add_argument("--zh", type=int, default=12, help="generated Chinese pitches")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/asr_wer.json"))
    args = ap.parse_args()
    console = Console(width=140)
    sets = english_sets(pocketsphinx_data())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets["zh pitches"] = spoken_chinese(chinese_pitches(args.zh), Path(tmp))
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            row = {"model": model, "sets": {}}
            audio_all = compute_all = 0.0
            for name, items in sets.items():
                out, audio_s, compute_s = run(model, items, name)
                audio_all, compute_all = audio_all + audio_s, compute_all + compute_s
                zh = name.startswith("zh")
                norm = normalise_chars if zh else normalise_words
                if zh:
                    out = [(r, simplified(h), lang) for r, h, lang in out]
                row["sets"][name] = {
                    "error_rate": error_rate([(norm(r), norm(h)) for r, h, _ in out]),
                    "tokens": sum(len(norm(r)) for r, _, _ in out), "utterances": len(out),
                    "language_ok": sum(lang == ("zh" if zh else "en") for _, _, lang in out) / len(out),
                    "examples": [{"reference": r, "hypothesis": h, "language": lang} for r, h, lang in out[:3]]}
            row["rtf"] = compute_all / max(audio_all, 1e-9)
            rows.append(row)
    base = rows[0]
    table = Table(title="offline Whisper models: WER (English, real recordings), CER (Chinese, generated)",
                  title_justify="left")
    for col in ("model", "LibriVox WER", "cards WER", f"vs {base['model']} (LibriVox)", "zh pitches CER",
                "zh detected", "compute s / audio s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        s = row["sets"]
        ratio = s["LibriVox"]["error_rate"] / max(base["sets"]["LibriVox"]["error_rate"], 1e-9)
        table.add_row(row["model"], f"{s['LibriVox']['error_rate']:.3f}", f"{s['cards']['error_rate']:.3f}",
                      f"{ratio:.2f}x", f"{s['zh pitches']['error_rate']:.3f}", f"{s['zh pitches']['language_ok']:.0%}",
                      f"{row['rtf']:.3f}")
    console.print(table)
    console.print(f"LibriVox: {base['sets']['LibriVox']['utterances']} utterances, "
                  f"{base['sets']['LibriVox']['tokens']} words; cards: {base['sets']['cards']['tokens']} words; "
                  f"zh: {args.zh} pitches, {base['sets']['zh pitches']['tokens']} characters")
    atomic.write_json(args.out, {"rows": rows})
    console.print(f"written {args.out}")


if __name__ == "__main__":
    main()
