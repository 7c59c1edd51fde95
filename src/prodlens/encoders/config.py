"""The encoders used when none is named (names only: nothing is loaded here)."""

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "minilm"
RUNTIMES = ("onnx", "torch")  # what runs an image encoder's forward pass on CPU (prodlens.encoders.onnx)
DEFAULT_RUNTIME = "onnx"
