"""What an embedding is made of: the zero-shot embedder's settings (imports no model: the command line generates
its options from these at start)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..encoders.config import DEFAULT_IMAGE_ENCODER, DEFAULT_RUNTIME, DEFAULT_TEXT_ENCODER, RUNTIMES
from ..media.config import DEFAULT_FRAMES
from ..ocr.config import DEFAULT_OCR_FRAMES, DEFAULT_OCR_MODEL, OCR_CHOICES

SHARD_ROWS = 4096  # rows of one embedding shard (prodlens.embed.shards)
INPUT_CHOICES = ("image", "text", "image+text")
SPEECH_CHOICES = ("raw", "gated", "anchored", "summary", "none")


@dataclass
class EmbedConfig:
    image_encoder: str = DEFAULT_IMAGE_ENCODER
    text_encoder: str = DEFAULT_TEXT_ENCODER
    frames: int = DEFAULT_FRAMES  # frames sampled per video / live sample
    image_size: int = 224  # side of the square images the image encoder sees
    batch_size: int = 32  # images per forward pass
    device: str = "cpu"
    page_inputs: str = "image+text"  # what a page embedding is made of
    clip_inputs: str = "image+text"  # what a video / live embedding is made of (text = title + ASR when present)
    visual_weight: float = 0.7  # w: share of the visual block in the cosine similarity (picked on Grocery train)
    bridge_topk: int = 10  # ConSE: class names mixed into an image's text-space vector
    # What video/live embeddings take from speech: the "raw" ASR text; "gated": the raw text less what the evidence
    # (title, repetition, the injection detector; frames with frame_evidence) rejects; "anchored": the clauses the
    # fitted gate of text.anchor keeps (agreement with the title and the frames' text); its "summary"; or "none".
    speech: str = "raw"
    summarizer: str = "extractive"  # summariser backend when speech = "summary" (see prodlens.text)
    # The frames as evidence of which product the speech is about (gated / summary speech). Off by default: the
    # zero-shot frame vector (ConSE bridge) does not tell the product from other products mentioned — on the
    # speech benchmark's 432 training clips its scores for the true product and for other mentions have the same
    # quantiles, and as a veto it removed 85% of true product mentions (README, AMPere's speech ablation).
    frame_evidence: bool = False
    flip_tta: bool = False  # test-time augmentation: each image's features averaged with its mirror image's
    ocr: str = "text"  # text read in the pictures (packs, cards): "text" embeds it as a third block; "none": not read
    ocr_model: str = DEFAULT_OCR_MODEL  # pp-ocrv6-small (rapidocr), pp-ocrv6-tiny / pp-ocrv6-small-fp (faster-paddle)
    ocr_frames: int = DEFAULT_OCR_FRAMES  # keyframes of a clip read (of its sampled frames)
    ocr_weight: float = 0.25  # share of the read-text block in the cosine similarity
    ocr_dim: int = 512  # width of the read-text block (hashed trigrams; chosen on Grocery train of 128-1024)
    runtime: str = DEFAULT_RUNTIME  # what runs the image encoder on CPU: "onnx" (ONNX Runtime) or "torch"

    def __post_init__(self):
        for key in ("page_inputs", "clip_inputs"):
            if getattr(self, key) not in INPUT_CHOICES:
                raise ValueError(f"{key} must be one of {INPUT_CHOICES}, got {getattr(self, key)!r}")
        if self.speech not in SPEECH_CHOICES:
            raise ValueError(f"speech must be one of {SPEECH_CHOICES}, got {self.speech!r}")
        if self.ocr not in OCR_CHOICES:
            raise ValueError(f"ocr must be one of {OCR_CHOICES}, got {self.ocr!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if not 0.0 <= self.visual_weight <= 1.0:
            raise ValueError("visual_weight must be in [0, 1]")
        if not 0.0 <= self.ocr_weight < 1.0:
            raise ValueError("ocr_weight must be in [0, 1)")
        if self.frames < 1 or self.batch_size < 1 or self.ocr_frames < 1 or self.ocr_dim < 16:
            raise ValueError("frames, ocr_frames and batch_size must be positive, ocr_dim at least 16")

    def signature(self) -> dict:
        """What determines the vectors (not batch size or device): two embedders with equal signatures agree."""
        config = {k: v for k, v in asdict(self).items() if k not in ("batch_size", "device", "runtime")}
        if self.ocr == "none":  # as before reading existed: models saved then keep their ids
            config = {k: v for k, v in config.items() if not k.startswith("ocr")}
        return {"kind": "zero-shot", "config": config}

    @property
    def read_weight(self) -> float | None:
        """The read-text block's share of the cosine similarity; None when nothing is read."""
        return self.ocr_weight if self.ocr != "none" else None

    @classmethod
    def saved(cls, settings: dict) -> "EmbedConfig":
        """The settings a model was saved with; one saved before pictures were read keeps reading nothing."""
        return cls(**{"ocr": "none", **settings})

    def model_name(self) -> str:
        speech = f"; speech={self.speech}" + (f"({self.summarizer})" if self.speech == "summary" else "")
        ocr = f"; ocr={self.ocr_model}" if self.ocr != "none" else ""
        return (f"zero-shot[{self.image_encoder}+{self.text_encoder}; page={self.page_inputs}; "
                f"clip={self.clip_inputs}; w={self.visual_weight:g}{speech}{ocr}]")
