"""What a clip's speech contributes to its embedding, under `EmbedConfig.speech`: nothing, the raw ASR text, the
gated text (less what the evidence rejects) or the summarised product facts — with the clip's frames as evidence
of which product it shows when `frame_evidence` is on."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..catalog import Sample
from ..errors import BadRecords


def _read(f) -> str | None:
    """The text OCR read in a sample's frames (evidence of identity for the speech), None when nothing was read."""
    return f.reading.text or None if f is not None and f.reading is not None else None


class SpeechText:
    """The speech setting of one feature extractor (`embedder`), which gives the frames' text-space vector (its
    ConSE bridge)."""

    def __init__(self, embedder, summarizer=None):
        self.embedder = embedder
        self.config = embedder.config
        self._summarizer = summarizer

    @property
    def summarizer(self):
        if self._summarizer is None:
            from ..text import Summarizer

            self._summarizer = Summarizer(self.config.summarizer, self.embedder.cache,
                                          text_encoder=self.config.text_encoder, device=self.config.device)
        return self._summarizer

    def of_samples(self, samples: list[Sample], bad: BadRecords, progress: bool = False,
                   feats: dict | None = None) -> dict[str, str]:
        """With speech = "gated" or "summary": sample_id → its gated ASR text or summarised product facts (cached),
        with the frames (`feats`: sample_id → SampleFeatures) as evidence when `frame_evidence` is on. A transcript
        the summariser cannot handle falls back to its raw text, and is reported."""
        if self.config.speech not in ("gated", "anchored", "summary"):
            return {}
        feats = feats or {}
        items = [(s.sample_id, s.asr_text, s.title, self._evidence(feats.get(s.sample_id)),
                  _read(feats.get(s.sample_id))) for s in samples if s.asr_text]
        return self._run(items, bad, progress)

    def of_transcript(self, transcript: str, title: str = "", record: str = "speech",
                      frames: list[Image.Image] | None = None, read: str | None = None) -> str:
        """One transcript (an uploaded clip's): nothing, the raw transcript, its gated text or its summarised
        product facts (the raw transcript when the summariser cannot handle it). `read`: the text OCR read in the
        clip's frames (evidence of which product it shows)."""
        if not transcript or self.config.speech == "none":
            return ""
        if self.config.speech == "raw":
            return transcript
        visual = None
        if frames and self.config.frame_evidence:
            visual = self._evidence_of_frames(frames)
        return self._run([(record, transcript, title, visual, read or None)], BadRecords(),
                         progress=False).get(record, transcript)

    def _run(self, items: list[tuple], bad: BadRecords, progress: bool) -> dict[str, str]:
        if self.config.speech in ("gated", "anchored"):
            many = self.summarizer.gate_many if self.config.speech == "gated" else self.summarizer.anchor_many
            kept, failed = many(items, progress=progress)
            for b in failed:
                bad.add(b.record, f"{b.problem} (raw ASR text used instead)", self.config.speech)
            return kept
        results, failed = self.summarizer.summarize_many(items, progress=progress)
        for b in failed:
            bad.add(b.record, f"{b.problem} (raw ASR text used instead)", "summarize")
        return {sid: r.facts.as_text() for sid, r in results.items()}

    def _evidence(self, f) -> np.ndarray | None:
        """The frames as a vector in the text encoder's space (the ConSE bridge of their mean class probabilities):
        what the gate and the summariser's evidence compare product mentions against, with frame_evidence on. None
        without class probabilities."""
        if f is None or f.probs is None or not self.config.frame_evidence:
            return None
        return self.embedder.bridge(np.asarray(f.probs, np.float32).mean(axis=0))

    def _evidence_of_frames(self, frames: list[Image.Image]) -> np.ndarray | None:
        from .embedder import SampleFeatures

        _, probs = self.embedder.encode_frames(frames)
        return self._evidence(SampleFeatures(probs=probs))
