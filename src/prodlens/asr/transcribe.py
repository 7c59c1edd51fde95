"""Speech recognition with faster-whisper: the audio track of video / live samples → timestamped transcript.

The default model is "auto": for a catalogue, the language of its titles and descriptions decides — English gets
the offline Whisper tiny.en, any other language the offline multilingual Whisper base (Chinese fixed to "zh", other
languages detected per clip); a clip on its own (a search query) gets Whisper base with its language detected.
Any offline name (`asr.models`), faster-whisper model name (`small`, `large-v3`, ...) or local CTranslate2 model
directory can be chosen instead. Transcripts are cached by model + audio content hash; each records its language.
ASR text already present in the catalogue is used as is.
"""
from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..catalog import Catalog, Sample
from ..cache import FeatureCache
from ..errors import BadRecords, MediaError, ProdlensError, RecordError
from ..media import extract_audio
from ..progress import progress_bar
from .config import DEFAULT_ASR_MODEL
from .models import resolve_asr_model

SAMPLE_RATE = 16_000
ENGLISH_MODEL, MULTILINGUAL_MODEL = "tiny.en-offline", "base-offline"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def catalog_language(catalog: Catalog) -> str:
    """"en", "zh" or "other": the script of the catalogue's product titles and descriptions (a CJK share over 30% of
    letters is Chinese; text that is nearly all ASCII letters is English)."""
    text = " ".join(f"{p.title} {p.description}" for p in list(catalog.products.values())[:2000])
    letters = sum(c.isalpha() for c in text)
    if not letters:
        return "en"
    if len(_CJK.findall(text)) / letters > 0.3:
        return "zh"
    return "en" if len(_LATIN.findall(text)) / letters > 0.95 else "other"


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    text: str
    language: str
    language_probability: float
    duration: float  # seconds of audio transcribed
    segments: list[Segment] = field(default_factory=list)
    truncated: bool = False  # the audio was longer than max_seconds and was cut

    @classmethod
    def from_dict(cls, d: dict) -> "Transcript":
        return cls(d["text"], d["language"], d["language_probability"], d["duration"],
                   [Segment(**s) for s in d.get("segments", [])], d.get("truncated", False))


class Transcriber:
    def __init__(self, model: str = DEFAULT_ASR_MODEL, device: str = "cpu", compute_type: str = "int8",
                 cache: FeatureCache | None = None, max_seconds: float = 30 * 60, beam_size: int = 5,
                 language: str | None = None, vad_filter: bool = True):
        self.model_spec = model
        self.device, self.compute_type = device, compute_type
        self.cache = cache or FeatureCache(None)
        self.max_seconds = max_seconds
        self.beam_size, self.language, self.vad_filter = beam_size, language, vad_filter
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            path = resolve_asr_model(self.resolved_model)
            try:
                self._model = WhisperModel(path, device=self.device, compute_type=self.compute_type)
            except (OSError, ValueError, RuntimeError) as e:
                raise ProdlensError(f"cannot load ASR model {self.model_spec!r}: {e}") from e
        return self._model

    @property
    def resolved_model(self) -> str:
        """The model that transcribes: "auto" without a catalogue (a clip on its own) is the multilingual one."""
        return MULTILINGUAL_MODEL if self.model_spec == "auto" else self.model_spec

    @property
    def cache_model_key(self) -> str:
        """The model (by name and, for a local directory, its content), decoding settings and the numeric type the
        model runs in: int8 and float32 transcribe differently."""
        from ..cache import model_digest, model_key

        return model_key(f"asr:{self.resolved_model}", beam=self.beam_size, vad=int(self.vad_filter),
                         language=self.language or "auto", compute_type=self.compute_type,
                         weights=model_digest(resolve_asr_model(self.resolved_model)))

    def for_language(self, language: str) -> "Transcriber":
        """With the "auto" model: the transcriber for a catalogue in `language` (see `catalog_language`); any other
        model as it is."""
        if self.model_spec != "auto":
            return self
        other = copy.copy(self)  # the same settings and cache; the model is loaded on first use
        other._model = None
        if language == "en":
            other.model_spec = ENGLISH_MODEL
        else:
            other.model_spec = MULTILINGUAL_MODEL
            other.language = self.language or ("zh" if language == "zh" else None)
        return other

    def transcribe_audio(self, audio: np.ndarray, record: str = "audio") -> Transcript:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size == 0:
            raise RecordError(record, "no audio samples")
        truncated = audio.size > self.max_seconds * SAMPLE_RATE
        audio = audio[: int(self.max_seconds * SAMPLE_RATE)]
        key = hashlib.sha256(audio.tobytes()).hexdigest()
        cached = self.cache.get_record(self.cache_model_key, "transcript", key)
        if cached is not None:
            return Transcript.from_dict(cached)
        segments, info = self.model.transcribe(audio, beam_size=self.beam_size, language=self.language,
                                               vad_filter=self.vad_filter, condition_on_previous_text=False)
        segs = [Segment(round(s.start, 2), round(s.end, 2), s.text.strip()) for s in segments]
        transcript = Transcript(" ".join(s.text for s in segs if s.text).strip(), info.language,
                                float(info.language_probability), round(audio.size / SAMPLE_RATE, 2), segs, truncated)
        self.cache.put_record(self.cache_model_key, "transcript", key, asdict(transcript))
        return transcript

    def transcribe_file(self, path: str | Path, record: str | None = None) -> Transcript:
        record = record or str(path)
        audio = extract_audio(path, SAMPLE_RATE, max_seconds=self.max_seconds + 1, record=record)
        return self.transcribe_audio(audio, record)


def transcribe_catalog(catalog: Catalog, transcriber: Transcriber, progress: bool = True, overwrite: bool = False,
                       domains: tuple[str, ...] = ("video", "live")) -> tuple[Catalog, dict[str, Transcript], BadRecords]:
    """Fill `asr_text` of samples of `domains` that have a video file and no ASR text yet (unless `overwrite`).
    Returns the updated catalogue, the new transcripts and the samples that could not be transcribed."""
    transcriber = transcriber.for_language(catalog_language(catalog))
    todo = [s for s in catalog.samples
            if s.domain in domains and s.video and (overwrite or not s.asr_text)]
    bad = BadRecords()
    transcripts: dict[str, Transcript] = {}
    with progress_bar(len(todo), "transcribing speech", enabled=progress) as advance:
        for s in todo:
            try:
                transcripts[s.sample_id] = transcriber.transcribe_file(catalog.path(s.video, s.sample_id), s.sample_id)
            except (MediaError, RecordError) as e:
                bad.add_error(e, "asr")
            advance(1)
    samples: list[Sample] = [replace(s, asr_text=transcripts[s.sample_id].text or None)
                             if s.sample_id in transcripts else s for s in catalog.samples]
    return replace(catalog, samples=samples), transcripts, bad
