"""Speech → text for video and live samples (faster-whisper)."""
from .models import OFFLINE_ASR_MODELS, resolve_asr_model
from .transcribe import DEFAULT_ASR_MODEL, Segment, Transcriber, Transcript, catalog_language, transcribe_catalog

__all__ = ["DEFAULT_ASR_MODEL", "OFFLINE_ASR_MODELS", "Segment", "Transcriber", "Transcript", "catalog_language",
           "resolve_asr_model", "transcribe_catalog"]
