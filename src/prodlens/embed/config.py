"""What an embedding is made of: the zero-shot embedder's settings (imports no model: the command line generates
its options from these at start)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..encoders.config import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER
from ..media.config import DEFAULT_FRAMES

SHARD_ROWS = 4096  # rows of one embedding shard (prodlens.embed.shards)
INPUT_CHOICES = ("image", "text", "image+text")
SPEECH_CHOICES = ("raw", "gated", "summary", "none")


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
    # (title, repetition, the injection detector; frames with frame_evidence) rejects; its "summary"; or "none".
    speech: str = "raw"
    summarizer: str = "extractive"  # summariser backend when speech = "summary" (see prodlens.text)
    # The frames as evidence of which product the speech is about (gated / summary speech). Off by default: the
    # zero-shot frame vector (ConSE bridge) does not tell the product from other products mentioned — on the
    # speech benchmark's 432 training clips its scores for the true product and for other mentions have the same
    # quantiles, and as a veto it removed 85% of true product mentions (README, AMPere's speech ablation).
    frame_evidence: bool = False
    flip_tta: bool = False  # test-time augmentation: each image's features averaged with its mirror image's

    def __post_init__(self):
        for key in ("page_inputs", "clip_inputs"):
            if getattr(self, key) not in INPUT_CHOICES:
                raise ValueError(f"{key} must be one of {INPUT_CHOICES}, got {getattr(self, key)!r}")
        if self.speech not in SPEECH_CHOICES:
            raise ValueError(f"speech must be one of {SPEECH_CHOICES}, got {self.speech!r}")
        if not 0.0 <= self.visual_weight <= 1.0:
            raise ValueError("visual_weight must be in [0, 1]")
        if self.frames < 1 or self.batch_size < 1:
            raise ValueError("frames and batch_size must be positive")

    def signature(self) -> dict:
        """What determines the vectors (not batch size or device): two embedders with equal signatures agree."""
        return {"kind": "zero-shot", "config": {k: v for k, v in asdict(self).items() if k not in ("batch_size", "device")}}

    def model_name(self) -> str:
        speech = f"; speech={self.speech}" + (f"({self.summarizer})" if self.speech == "summary" else "")
        return (f"zero-shot[{self.image_encoder}+{self.text_encoder}; page={self.page_inputs}; "
                f"clip={self.clip_inputs}; w={self.visual_weight:g}{speech}]")
