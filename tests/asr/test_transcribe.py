"""Real speech (espeak-ng) through the real offline Whisper model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prodlens.asr import Transcriber, transcribe_catalog
from prodlens.catalog import load_folder, load_manifest
from prodlens.embed import FeatureCache
from prodlens.errors import RecordError
from tests.helpers import RAINBOW, solid_image, speak, write_video

PITCH = ("Hello everyone and welcome back. Today I am showing you a bottle of green apple shampoo. "
         "It costs nine dollars.")


@pytest.fixture(scope="module")
def transcriber():
    return Transcriber(cache=FeatureCache(None))


def test_speech_in_a_video_is_transcribed(tmp_path, transcriber):
    audio, rate = speak(PITCH, tmp_path / "pitch.wav")
    video = write_video(tmp_path / "clip.mp4", RAINBOW * 3, audio=audio, audio_rate=rate)
    t = transcriber.transcribe_file(video, "live/p1/clip")
    words = t.text.lower()
    assert "shampoo" in words and "apple" in words, t.text
    assert t.language == "en" and t.segments and t.segments[0].start >= 0
    assert abs(t.duration - audio.size / rate) < 0.5
    hits = transcriber.cache.hits
    again = transcriber.transcribe_file(video, "live/p1/clip")
    assert again.text == t.text and transcriber.cache.hits == hits + 1  # cached by audio content


def test_silence_and_noise_give_little_or_no_text(transcriber):
    silence = transcriber.transcribe_audio(np.zeros(16000 * 3, np.float32), "silent")
    assert silence.text == ""
    noise = transcriber.transcribe_audio(np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32),
                                         "noise")
    assert len(noise.text) < 40
    with pytest.raises(RecordError, match="no audio samples"):
        transcriber.transcribe_audio(np.zeros(0, np.float32), "empty")


def test_long_audio_is_cut_at_the_limit(tmp_path):
    audio, rate = speak(PITCH, tmp_path / "p.wav")
    short = Transcriber(cache=FeatureCache(None), max_seconds=2.0)
    t = short.transcribe_audio(np.interp(np.arange(0, audio.size, rate / 16000), np.arange(audio.size), audio), "r")
    assert t.truncated and t.duration == 2.0


def _speech_catalogue(root: Path, tmp_path: Path) -> Path:
    audio, rate = speak(PITCH, tmp_path / "pitch.wav")
    (root / "page" / "p1").mkdir(parents=True)
    solid_image().save(root / "page" / "p1" / "main.jpg")
    (root / "live" / "p1").mkdir(parents=True)
    write_video(root / "live" / "p1" / "talk.mp4", RAINBOW, audio=audio, audio_rate=rate)
    write_video(root / "live" / "p1" / "mute.mp4", RAINBOW)  # no audio track
    write_video(root / "live" / "p1" / "given.mp4", RAINBOW, audio=audio, audio_rate=rate)
    (root / "live" / "p1" / "given.asr.txt").write_text("transcript supplied with the catalogue")
    return root


def test_catalogue_transcription_keeps_given_text_and_reports_bad_records(tmp_path, transcriber):
    cat = load_folder(_speech_catalogue(tmp_path / "cat", tmp_path))
    updated, transcripts, bad = transcribe_catalog(cat, transcriber, progress=False)
    by_id = {s.sample_id: s for s in updated.samples}
    assert "shampoo" in by_id["live/p1/talk"].asr_text.lower()
    assert by_id["live/p1/given"].asr_text == "transcript supplied with the catalogue"
    assert set(transcripts) == {"live/p1/talk"}
    assert [(b.record, "no audio track" in b.problem) for b in bad] == [("live/p1/mute", True)]


def test_asr_command_writes_a_manifest_with_transcripts(tmp_path):
    root = _speech_catalogue(tmp_path / "cat", tmp_path)
    out = tmp_path / "manifest"
    proc = subprocess.run([str(Path(sys.executable).parent / "prodlens"), "asr", "folder", "--root", str(root),
                           "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    cat = load_manifest(out)
    assert "shampoo" in {s.sample_id: s for s in cat.samples}["live/p1/talk"].asr_text.lower()
    lines = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert lines[0]["sample_id"] == "live/p1/talk" and lines[0]["segments"]
    assert "live/p1/mute" in proc.stderr
