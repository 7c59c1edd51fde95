"""ASR defaults (names only: nothing is loaded here)."""

# "auto": the multilingual Whisper base, language per clip; English catalogues use tiny.en (prodlens.asr.transcribe)
DEFAULT_ASR_MODEL = "auto"
