"""Speech → text for video and live samples (faster-whisper)."""
from ..lazy import exports

_WHERE = {
    "models": ['OFFLINE_ASR_MODELS', 'resolve_asr_model'],
    "config": ['DEFAULT_ASR_MODEL'],
    "transcribe": ['Segment', 'Transcriber', 'Transcript', 'catalog_language', 'transcribe_catalog'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
