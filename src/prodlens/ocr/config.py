"""OCR defaults (names only: nothing is loaded here)."""

# PP-OCRv6 small detector + recogniser (English and Chinese) inside the rapidocr wheel, on ONNX Runtime
DEFAULT_OCR_MODEL = "pp-ocrv6-small"
DEFAULT_OCR_FRAMES = 3  # keyframes of a clip that are read (of the frames sampled for its embedding)
OCR_CHOICES = ("none", "text")  # what an embedding takes from the text read in its pictures
MIN_SCORE = 0.5  # lines read with less confidence than this are dropped
MAX_LINES = 200  # lines kept per image (the most confident): a page of small print is not a product's name
