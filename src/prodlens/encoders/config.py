"""The encoders used when none is named (names only: nothing is loaded here)."""

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "minilm"
