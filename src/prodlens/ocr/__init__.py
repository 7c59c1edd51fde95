"""Text in pictures → text lines (OCR): packaging, product cards, captions and price stickers in page images and in
a clip's keyframes, read by PP-OCR models on ONNX Runtime."""
from ..lazy import exports

_WHERE = {
    "config": ['DEFAULT_OCR_MODEL', 'DEFAULT_OCR_FRAMES', 'OCR_CHOICES'],
    "engines": ['OCR_ENGINES', 'build_ocr_engine', 'ocr_model_names'],
    "read": ['OcrReader', 'Reading', 'TextLine', 'keyframes'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
