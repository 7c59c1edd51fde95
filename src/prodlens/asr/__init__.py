"""Speech → text for video and live samples (faster-whisper)."""
from .transcribe import DEFAULT_ASR_MODEL, Segment, Transcriber, Transcript, transcribe_catalog

__all__ = ["DEFAULT_ASR_MODEL", "Segment", "Transcriber", "Transcript", "transcribe_catalog"]
