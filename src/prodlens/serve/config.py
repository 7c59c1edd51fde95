"""The search service's settings (imports no model: the command line generates `serve`'s options from them)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..asr.config import DEFAULT_ASR_MODEL
from ..rec.config import ANN_ABOVE

RETRIEVALS = ("hybrid", "vector", "lexical")


@dataclass
class ServeConfig:
    index_dir: str = ""
    checkpoint: str | None = None  # where the index's trained model now lives (the same weights are required)
    max_upload_mb: float = 64.0  # largest accepted upload
    max_text_chars: int = 2000  # longest accepted query text
    max_k: int = 100  # most results one query (one page) may ask for
    max_offset: int = 1000  # deepest page: offset + k may not exceed this
    max_batch: int = 32  # queries embedded in one forward pass (1: every query alone, as before batching)
    batch_wait_ms: float = 2.0  # how long the first query of a batch waits for others to join
    batch_timeout_s: float = 60.0  # a query waiting longer for its batch gets 503 (a stuck model never hangs all)
    max_batch_queries: int = 64  # queries in one POST /search/batch request
    retrieval: str = "hybrid"  # hybrid (vectors + BM25 fused by the fitted relevance model), vector or lexical
    rewriter: str | None = None  # rewrite text queries with this LLM (qwen2.5-1.5b, a GGUF, http://HOST:PORT/v1::MODEL)
    # also rank a photo or clip query by the text read in it (BM25, fused by rank). Off: its read text is already a
    # block of its vector, and fusing it again by rank cost 13 points of packaged-product top-1 (docs/search.md)
    lexical_read: bool = False
    query_frames: int | None = None  # frames sampled from an uploaded clip (None: as many as the index's model uses)
    asr: bool = False  # transcribe uploaded clips' speech into the query (faster-whisper)
    asr_model: str = DEFAULT_ASR_MODEL  # for --asr: "auto" (multilingual Whisper base, language per clip), an offline
    # name, a faster-whisper size name or a local CTranslate2 directory
    summarizer: str | None = None  # speech summariser (default: the one the index's model was built with)
    max_clip_seconds: float = 600.0  # longest accepted uploaded clip
    device: str = "cpu"  # torch device for the query encoders
    cache_dir: str | None = None  # feature / transcript cache directory
    rec_run: str | None = None  # a trained recommender run (prodlens rec eval --out): enables /recommend
    # from this many recommender items, approximate top-k (an HNSW graph saved with the run: built by the first
    # process that serves it, opened by the others) instead of exact; None: never
    rec_ann_above: int | None = ANN_ABOVE
    api_key: str | None = None  # the X-API-Key write endpoints require (default $PRODLENS_API_KEY; none: no writes)
    read_key: str | None = None  # the X-API-Key every search needs too (default $PRODLENS_READ_KEY; none: open reads)
    index_name: str = "default"  # the first index's name under /indexes/{name}/...
    indexes: dict = field(default_factory=dict)  # more indexes served beside it: name → index directory
    reload_seconds: float | None = 2.0  # look for a newer index version (index add/remove) this often; <0: never

    def __post_init__(self):
        if self.reload_seconds is not None and self.reload_seconds < 0:
            self.reload_seconds = None
        if self.retrieval not in RETRIEVALS:
            raise ValueError(f"retrieval must be one of {', '.join(RETRIEVALS)}, got {self.retrieval!r}")
