"""The search service without HTTP: an index, the model that built it, and query handling.

A query is an image, a video clip (frames sampled; speech transcribed, and summarised when the index's model uses
summaries, if ASR is enabled), text, or an indexed sample id. Inputs are sniffed, not trusted by name or MIME type.
"""
from __future__ import annotations

import hmac
import io
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..asr import DEFAULT_ASR_MODEL
from ..cache import open_cache
from ..catalog import DOMAINS
from ..errors import MediaError, ProdlensError, RecordError
from ..index import Hit, ProductIndex
from ..index.query import query_model
from ..rec.serve import ANN_ABOVE, Recommender

log = logging.getLogger(__name__)


class BadQuery(ProdlensError):
    """The request itself is wrong (HTTP 4xx): nothing to search with, unknown id, bad media..."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class ServeConfig:
    index_dir: str = ""
    checkpoint: str | None = None  # where the index's trained model now lives (the same weights are required)
    max_upload_mb: float = 64.0  # largest accepted upload
    max_text_chars: int = 2000  # longest accepted query text
    max_k: int = 100  # most results one query may ask for
    query_frames: int | None = None  # frames sampled from an uploaded clip (None: as many as the index's model uses)
    asr: bool = False  # transcribe uploaded clips' speech into the query (faster-whisper)
    asr_model: str = DEFAULT_ASR_MODEL  # for --asr: "auto" (multilingual Whisper base, language per clip), an offline
    # name, a faster-whisper size name or a local CTranslate2 directory
    summarizer: str | None = None  # speech summariser (default: the one the index's model was built with)
    max_clip_seconds: float = 600.0  # longest accepted uploaded clip
    device: str = "cpu"  # torch device for the query encoders
    cache_dir: str | None = None  # feature / transcript cache directory
    rec_run: str | None = None  # a trained recommender run (prodlens rec eval --out): enables /recommend
    # from this many recommender items, approximate top-k (an HNSW graph built at start) instead of exact; None: never
    rec_ann_above: int | None = ANN_ABOVE
    # the key write endpoints require (X-API-Key header); unset: $PRODLENS_API_KEY; neither: writes are refused
    api_key: str | None = None
    reload_seconds: float | None = 2.0  # look for a newer index version (index add/remove) this often; <0: never

    def __post_init__(self):
        if self.reload_seconds is not None and self.reload_seconds < 0:
            self.reload_seconds = None


@dataclass
class QueryResult:
    hits: list[Hit]
    query: dict = field(default_factory=dict)  # what was searched with: kind, domain, transcript...
    took_ms: float = 0.0

    def to_json(self) -> dict:
        return {"results": [h.to_json() for h in self.hits], "query": self.query, "took_ms": round(self.took_ms, 2)}


class SearchService:
    def __init__(self, config: ServeConfig, index: ProductIndex | None = None):
        self.config = config
        self.index = index or ProductIndex.open(config.index_dir)
        self.cache = open_cache(config.cache_dir)
        self.model, self.features = query_model(self.index.record, self.cache, config.checkpoint, config.device)
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core
        self._latencies: deque[float] = deque(maxlen=2000)
        self.queries = 0
        self.started = time.time()
        self._transcriber = None
        self._speech_features = None
        self.model.embed_query([Image.new("RGB", (64, 64))], "warm up", "page")  # load encoders before "ready"
        self.recommender = None
        if config.rec_run:
            self.recommender = Recommender.from_run(config.rec_run, cache=self.cache,
                                                    ann_above=config.rec_ann_above)
        self._api_key = config.api_key or os.environ.get("PRODLENS_API_KEY") or None
        self._use_index(self.index)
        self._reload_lock = threading.Lock()
        self._last_check = time.monotonic()
        self.reloads = 0
        self.reload_error: str | None = None

    def _use_index(self, index: ProductIndex) -> None:
        self._page_thumbnails = {it.product_id: it.thumbnail for it in index.items.values()
                                 if it.domain == "page" and it.thumbnail}
        self.index = index

    def refresh_index(self, force: bool = False) -> bool:
        """Swap in the index's current version if `prodlens index add/remove` saved a newer one while serving.

        Checked at most every `reload_seconds`; a version that cannot be read or comes from another model is refused
        (the old one keeps serving, the reason shows in /stats). Returns whether the index changed."""
        interval = self.config.reload_seconds
        if interval is None and not force:
            return False
        if not force and time.monotonic() - self._last_check < interval:
            return False
        if not self._reload_lock.acquire(blocking=False):
            return False  # another request is already reloading
        try:
            self._last_check = time.monotonic()
            if self.index.is_current():
                return False
            try:
                new = ProductIndex.open(self.index.path)
                if new.model_id != self.index.model_id:
                    raise ProdlensError(f"version {new.record.get('version')} was built by model {new.model_id}, "
                                        f"this server embeds queries with {self.index.model_id}; restart the server "
                                        "to switch models")
            except ProdlensError as e:
                if self.reload_error != str(e):
                    log.warning("not reloading the index: %s", e)
                self.reload_error = str(e)
                return False
            self._use_index(new)
            self.reloads += 1
            self.reload_error = None
            log.info("index reloaded: version %s, %d items", new.record.get("version"), len(new))
            return True
        finally:
            self._reload_lock.release()

    # -- query embedding ------------------------------------------------------------------------------------------
    def embed_upload(self, data: bytes, filename: str = "upload", text: str = "", domain: str | None = None):
        """(query vector, description) for uploaded bytes: an image or a video clip, sniffed from the content."""
        limit = int(self.config.max_upload_mb * 1024 * 1024)
        if not data:
            raise BadQuery(f"{filename}: the uploaded file is empty")
        if len(data) > limit:
            raise BadQuery(f"{filename}: {len(data)} bytes is over the {self.config.max_upload_mb:g} MB limit", 413)
        if _looks_like_image(data):
            try:
                from ..media import decode_image

                frames = [decode_image(data, filename, filename)]
            except MediaError as e:
                raise BadQuery(str(e), 422) from None
            query = {"kind": "image", "domain": domain or "live"}
        else:
            frames, transcript = self._clip(data, filename)
            query = {"kind": "video", "domain": domain or "live", "frames": len(frames)}
            if transcript:
                text = f"{text}. {transcript}" if text else transcript
                query["speech"] = transcript
        return self._embed(frames, text, query["domain"]), query

    def _clip(self, data: bytes, filename: str) -> tuple[list[Image.Image], str]:
        from ..media import sample_frames, video_info

        suffix = Path(filename).suffix if Path(filename).suffix.lower() in (".mp4", ".mov", ".webm", ".mkv", ".avi") \
            else ".bin"
        with tempfile.NamedTemporaryFile(suffix=suffix) as f:
            f.write(data)
            f.flush()
            try:
                info = video_info(f.name, filename)
            except MediaError:
                raise BadQuery(f"{filename}: neither an image nor a video this server can read", 415) from None
            if info.get("width") is None:
                raise BadQuery(f"{filename}: neither an image nor a video (no picture stream)", 415)
            duration = info.get("duration") or 0.0
            if duration > self.config.max_clip_seconds:
                raise BadQuery(f"{filename}: clip is {duration:.0f} s long, over the {self.config.max_clip_seconds:g} s"
                               " limit", 413)
            try:
                frames = sample_frames(f.name, self.config.query_frames or self.model.frames, filename)
            except MediaError as e:
                raise BadQuery(str(e), 422) from None
            return frames, self._speech(f.name, filename, frames) if self.config.asr else ""

    def _speech(self, path: str, record: str, frames=None) -> str:
        """The clip's speech as query text under the index's speech setting (raw, gated or summarised), with its frames
        as evidence."""
        from ..asr import Transcriber

        try:
            if self._transcriber is None:
                self._transcriber = Transcriber(self.config.asr_model, cache=self.cache)
            transcript = self._transcriber.transcribe_file(path, record).text
        except RecordError:
            return ""  # no audio track / no speech: search by the pictures alone
        except ProdlensError as e:  # the ASR model cannot be loaded: the pictures still answer the query
            log.warning("speech of %s not transcribed (%s); searching by its frames", record, e)
            return ""
        if self._speech_features is None:  # the index's speech setting, with this server's summariser if it names one
            self._speech_features = (self.features.with_config(summarizer=self.config.summarizer)
                                     if self.config.summarizer else self.features)
        return self._speech_features.speech.of_transcript(transcript, record=record, frames=frames)

    def embed_text(self, text: str, domain: str | None = None):
        text = (text or "").strip()
        if not text:
            raise BadQuery("the query text is empty")
        if len(text) > self.config.max_text_chars:
            raise BadQuery(f"the query text is {len(text)} characters, over the {self.config.max_text_chars} limit", 413)
        domain = domain or "page"
        return self._embed([], text, domain), {"kind": "text", "domain": domain}

    def _embed(self, frames, text: str, domain: str) -> np.ndarray:
        if domain not in DOMAINS:
            raise BadQuery(f"query domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
        with self._lock:
            return self.model.embed_query(frames, text, domain)

    # -- search ---------------------------------------------------------------------------------------------------
    def search(self, *, data: bytes | None = None, filename: str = "upload", text: str = "",
               sample_id: str | None = None, k: int = 10, domains=None, categories=None, per_product: bool = True,
               query_domain: str | None = None) -> QueryResult:
        start = time.perf_counter()
        self._check_k(k)
        self.refresh_index()
        index = self.index  # this request's index, even if a reload swaps in a newer one meanwhile
        for d in domains or ():
            if d not in DOMAINS:
                raise BadQuery(f"unknown domain filter {d!r} (page, video or live)", 422)
        exclude = None
        if data is not None:
            vector, query = self.embed_upload(data, filename, text, query_domain)
        elif sample_id:
            try:
                vector = index.vector_of(sample_id)
            except KeyError:
                raise BadQuery(f"sample {sample_id!r} is not in the index", 404) from None
            query, exclude = {"kind": "sample", "sample_id": sample_id}, sample_id
        elif text and text.strip():
            vector, query = self.embed_text(text, query_domain)
        else:
            raise BadQuery("nothing to search with: upload a file, or give text or a sample_id")
        hits = index.search(vector, k, domains=domains, categories=categories, per_product=per_product,
                                 exclude_sample=exclude)
        took = (time.perf_counter() - start) * 1000
        self._latencies.append(took)
        self.queries += 1
        return QueryResult(hits, query, took)

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= self.config.max_k:
            raise BadQuery(f"k must be between 1 and {self.config.max_k}, got {k}", 422)

    def recommend(self, user: str | None = None, history: list[str] | None = None, k: int = 10) -> list[dict]:
        """Next items for a known user, or for an explicit history (item ids, oldest first). When the recommender's
        items are catalogue products, results carry the product page's thumbnail."""
        if self.recommender is None:
            raise BadQuery("this server has no recommender (start it with --rec RUN_DIR)", 404)
        self._check_k(k)
        try:
            if user is not None:
                hits = self.recommender.recommend_user(user, k)
            elif history:
                hits = self.recommender.recommend_history(list(history), k)
            else:
                raise BadQuery("give a user id or a non-empty history of item ids")
        except KeyError as e:
            raise BadQuery(str(e).strip("'\""), 404) from None
        for h in hits:
            h["thumbnail"] = self._page_thumbnails.get(h["item_id"], "")
        return hits

    def check_writer(self, key: str | None) -> None:
        """Write endpoints take the server's API key (compared in constant time)."""
        if self._api_key is None:
            raise BadQuery("this server takes no writes: start it with --api-key or PRODLENS_API_KEY set", 403)
        if not key or not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise BadQuery("a valid X-API-Key header is required for this endpoint", 401)

    def _writable_recommender(self):
        if self.recommender is None:
            raise BadQuery("this server has no recommender (start it with --rec RUN_DIR)", 404)
        return self.recommender

    def add_rec_items(self, items: list[tuple[str, str]]) -> dict:
        """New items (id, text) into the served recommender's catalogue: recommendable when this returns."""
        rec = self._writable_recommender()
        if not items:
            raise BadQuery("no items given")
        version = rec.add_items([i for i, _ in items], [t for _, t in items])
        return {"added": len(items), "version": version, "items": len(rec.table)}

    def remove_rec_items(self, ids: list[str]) -> dict:
        rec = self._writable_recommender()
        version = rec.remove_items(ids)
        return {"removed": len(ids), "version": version, "items": len(rec.table)}

    def stats(self) -> dict:
        lat = sorted(self._latencies)
        if self.recommender is not None:
            self.recommender.refresh()
        return {**self.index.stats(), "queries": self.queries, "uptime_s": round(time.time() - self.started, 1),
                "latency_ms_p50": round(statistics.median(lat), 2) if lat else None,
                "latency_ms_p99": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None,
                "asr": self.config.asr, "query_model": self.model.name, "reloads": self.reloads,
                "reload_error": self.reload_error,
                "recommender": None if self.recommender is None else {
                    "model": self.recommender.cfg.model, "items": len(self.recommender.table),
                    "item_table_version": self.recommender.table.version, "users": len(self.recommender.histories)}}


def _looks_like_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return bool(img.format)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    except Image.DecompressionBombError:
        return True  # an image, and decode_image will reject it with a clear message
