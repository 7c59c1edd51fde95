"""The search service without HTTP: an index, the model that built it, and query handling.

A query is an image, a video clip (frames sampled; speech transcribed, and summarised when the index's model uses
summaries, if ASR is enabled), text, or an indexed sample id. Inputs are sniffed, not trusted by name or MIME type.
"""
from __future__ import annotations

import contextlib
import csv
import hmac
import io
import logging
import os
import re
import statistics
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..cache import open_cache
from ..catalog import DOMAINS
from ..catalog.folder import PRODUCT_COLUMNS
from ..errors import MediaError, ProdlensError, RecordError
from ..embed import Embeddings
from ..index import Hit, IndexInfo, ProductIndex
from ..index.build import embed_into
from ..index.filters import FilterError, parse_filters
from ..index.query import query_model
from ..rec.serve import Recommender
from .batching import MicroBatcher
from .config import RETRIEVALS, ServeConfig
from .metrics import Metrics

log = logging.getLogger(__name__)

ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
API_SAMPLE = "api"  # a product page written over HTTP is the sample page/<product_id>/api
EMBEDDED_FIELDS = ("title", "description")  # what a page's vector is made of besides its picture
REWRITE_VECTORS = 10_000  # rewritten queries whose vectors are kept


class BadQuery(ProdlensError):
    """The request itself is wrong (HTTP 4xx): nothing to search with, unknown id, bad media..."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class QueryResult:
    hits: list[Hit]
    query: dict = field(default_factory=dict)  # what was searched with: kind, domain, transcript...
    took_ms: float = 0.0
    offset: int = 0
    next_offset: int | None = None  # the next page's offset; None: no more hits
    total: int = 0  # hits in all (at least this many when not total_exact)
    total_exact: bool = True
    reason: str | None = None  # why there are no results, when there are none

    def to_json(self) -> dict:
        return {"results": [h.to_json() for h in self.hits], "query": self.query, "took_ms": round(self.took_ms, 3),
                "offset": self.offset, "next_offset": self.next_offset, "total": self.total,
                "total_relation": "eq" if self.total_exact else "gte", "reason": self.reason}


@dataclass
class SearchQuery:
    """One search: an upload (`data`), an indexed `sample_id` or `text`; a page of `k` hits from `offset`."""
    data: bytes | None = None
    filename: str = "upload"
    text: str = ""
    sample_id: str | None = None
    k: int = 10
    offset: int = 0
    domains: list[str] | None = None  # None: every domain; []: none chosen (an error)
    categories: list[str] | None = None  # matched case-insensitively
    filters: dict | None = None  # product attributes: {"brand": "Arla", "price": {"lt": 20}} (prodlens.index.filters)
    per_product: bool = True
    query_domain: str | None = None
    min_score: float | None = None  # drop hits less relevant than this (relevance is in [0, 1])
    retrieval: str | None = None  # vector | lexical | hybrid (None: the server's setting)


class SearchService:
    def __init__(self, config: ServeConfig, index: ProductIndex | None = None, metrics: Metrics | None = None):
        self.config = config
        self.index = index or ProductIndex.open(config.index_dir)
        self.cache = open_cache(config.cache_dir)
        self.model, self.features = query_model(self.index.record, self.cache, config.checkpoint, config.device)
        self.metrics = metrics or Metrics()
        self._latencies: deque[float] = deque(maxlen=2000)
        self.queries = 0
        self.started = time.time()
        self._transcriber = None
        self._rewriter = None
        self._rewriter_index = None
        self._rewrite_vectors: dict[str, np.ndarray] = {}
        self._speech_features = None
        self.model.embed_query([Image.new("RGB", (64, 64))], "warm up", "page")  # load encoders before "ready"
        # one thread runs every forward pass (torch already uses every core), on as many queued queries as it can
        self.batcher = MicroBatcher(self._embed_batch, config.max_batch, config.batch_wait_ms,
                                    timeout_s=config.batch_timeout_s,
                                    on_batch=self.metrics.observe_batch)
        self.recommender = None
        if config.rec_run:
            self.recommender = Recommender.from_run(config.rec_run, cache=self.cache,
                                                    ann_above=config.rec_ann_above)
            # concurrent recommendation requests share one pass of the user tower and one scoring of the items
            self.rec_batcher = MicroBatcher(self._recommend_batch, config.max_batch, config.batch_wait_ms,
                                            timeout_s=config.batch_timeout_s,
                                            on_batch=self.metrics.observe_rec_batch, name="prodlens-rec-batcher")
        self._api_key = config.api_key or os.environ.get("PRODLENS_API_KEY") or None
        self._read_key = config.read_key or os.environ.get("PRODLENS_READ_KEY") or None
        self._use_index(self.index)
        if config.rewriter:  # loaded before "ready": a rewriter that cannot load fails the start, not each query
            self._rewrites([], self.index)
        self._reload_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one document write at a time (other processes: the index's lock)
        self._last_check = time.monotonic()
        self.reloads = 0
        self.reload_error: str | None = None

    def _use_index(self, index: ProductIndex) -> None:
        thumbnails: dict[str, tuple[bool, str]] = {}  # a product's page picture, else any sample's
        for it in index.items.values():
            if it.thumbnail and (it.product_id not in thumbnails or (it.domain == "page" and not
                                                                      thumbnails[it.product_id][0])):
                thumbnails[it.product_id] = (it.domain == "page", it.thumbnail)
        self._thumbnails = {pid: name for pid, (_, name) in thumbnails.items()}
        self._categories = index.category_products()
        self._folded_categories = {c.casefold(): c for c in self._categories}
        self.index = index
        self.metrics.index_items.set(len(index))
        self.metrics.index_version.set(index.record.get("version") or 0)

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
        frames, text, reading, query = self._decode_upload(data, filename, text, domain)
        return self._embed(frames, text, query["domain"], reading), query

    def _decode_upload(self, data: bytes, filename: str, text: str, domain: str | None):
        """(prepared frames, query text, what OCR read in the frames, description) of uploaded bytes; decoding and
        reading run in the calling (request) thread, reading on the frames at their own resolution."""
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
            reading = self.model.read_query(frames)
        else:
            frames, transcript, reading = self._clip(data, filename)
            query = {"kind": "video", "domain": domain or "live", "frames": len(frames)}
            if transcript:
                text = f"{text}. {transcript}" if text else transcript
                query["speech"] = transcript
        self._check_domain(query["domain"])
        if reading is not None:
            query["read"] = reading.text
        return self.model.prepare_query_frames(frames), text, reading, query

    def _clip(self, data: bytes, filename: str) -> tuple[list[Image.Image], str, object]:
        """(frames, the speech as query text, what OCR read in the frames) of an uploaded clip."""
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
            reading = self.model.read_query(frames)
            speech = self._speech(f.name, filename, frames, reading.text if reading is not None else None) \
                if self.config.asr else ""
            return frames, speech, reading

    def _speech(self, path: str, record: str, frames=None, read: str | None = None) -> str:
        """The clip's speech as query text under the index's speech setting (raw, gated or summarised), with its frames
        and the text read in them as evidence."""
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
        return self._speech_features.speech.of_transcript(transcript, record=record, frames=frames, read=read)

    def embed_text(self, text: str, domain: str | None = None):
        text, query = self._checked_text(text, domain)
        return self._embed([], text, query["domain"]), query

    def _checked_text(self, text: str, domain: str | None) -> tuple[str, dict]:
        text = (text or "").strip()
        if not text:
            raise BadQuery("the query text is empty")
        if len(text) > self.config.max_text_chars:
            raise BadQuery(f"the query text is {len(text)} characters, over the {self.config.max_text_chars} limit", 413)
        domain = domain or "page"
        self._check_domain(domain)
        return text, {"kind": "text", "domain": domain}

    @staticmethod
    def _check_domain(domain: str) -> None:
        if domain not in DOMAINS:
            raise BadQuery(f"query domain must be one of {', '.join(DOMAINS)}, got {domain!r}")

    def _embed_batch(self, queries: list[tuple], domain: str) -> np.ndarray:
        """queries: (frames, text[, what OCR read in the frames])."""
        frames, texts, readings = zip(*((*q, None)[:3] for q in queries))
        return self.model.embed_queries(list(frames), list(texts), domain, list(readings))

    def _embed(self, frames, text: str, domain: str, reading=None) -> np.ndarray:
        self._check_domain(domain)
        try:
            return self.batcher.submit((frames, text, reading), domain)
        except RecordError as e:
            raise BadQuery(str(e), 422) from None

    # -- search ---------------------------------------------------------------------------------------------------
    def search(self, **query) -> QueryResult:
        """One search (the fields of SearchQuery); a bad query raises BadQuery."""
        result = self.search_many([SearchQuery(**query)])[0]
        if isinstance(result, BadQuery):
            raise result
        return result

    def search_many(self, queries: list[SearchQuery]) -> list[QueryResult | BadQuery]:
        """Several searches; their embeddings share forward passes. A bad query gets its error in its place, the
        others are answered."""
        start = time.perf_counter()
        self.refresh_index()
        index = self.index  # these requests' index, even if a reload swaps in a newer one meanwhile
        out: list[QueryResult | BadQuery | None] = [None] * len(queries)
        prepared: list[tuple[int, np.ndarray | None, list, str, object, dict, str | None]] = []
        for n, q in enumerate(queries):
            try:
                prepared.append((n, *self._prepare(q, index)))
            except BadQuery as e:
                out[n] = e
        to_embed: dict[str, list[int]] = {}
        for slot, (n, vector, frames, text, _, query, _) in enumerate(prepared):
            if vector is None:
                to_embed.setdefault(query["domain"], []).append(slot)
        vectors: dict[int, np.ndarray] = {}
        for domain, slots in to_embed.items():
            got = self.batcher.submit_many([prepared[i][2:5] for i in slots], domain)
            for i, vector in zip(slots, got):
                if isinstance(vector, RecordError):  # this query alone cannot be embedded
                    out[prepared[i][0]] = BadQuery(str(vector), 422)
                elif isinstance(vector, BaseException):
                    raise vector
                else:
                    vectors[i] = vector
        rewrites = self._rewrites(prepared, index)
        for slot, (n, vector, _, text, reading, query, exclude) in enumerate(prepared):
            if out[n] is not None:
                continue
            q = queries[n]
            vector = vector if vector is not None else vectors.get(slot)
            read = reading.text if reading is not None and self.config.lexical_read else ""
            words = " ".join(t for t in (text, read) if t.strip()) if query["kind"] != "sample" else ""
            texts = {"q": words} if query["retrieval"] != "vector" and words else {}
            if not texts and query["retrieval"] == "hybrid":  # nothing to rank by words: the vector alone
                query["retrieval"] = "vector"
            retrieval = query["retrieval"]
            kind = query["kind"] if retrieval == "hybrid" else f"{query['kind']}:{retrieval}"
            if retrieval == "hybrid" and query["kind"] != "text":  # a photo or clip with words (typed, spoken)
                kind = f"{query['kind']}+text"
            searched = {"q": vector} if retrieval != "lexical" else {}
            if slot in rewrites:  # the query in the catalogue's words: more signals for the relevance model
                query["rewrite"], searched["rw"] = rewrites[slot]
                texts["rw"] = query["rewrite"]
                kind = "text+rewrite"
            found = index.query(searched, texts, kind,
                                q.k, q.offset, domains=q.domains, categories=query.pop("_categories"),
                                conditions=query.pop("_conditions"), per_product=q.per_product, exclude_sample=exclude,
                                min_score=q.min_score, max_depth=self.config.max_offset)
            query["calibrated"] = index.calibrated
            took = (time.perf_counter() - start) * 1000
            self._latencies.append(took)
            self.queries += 1
            self.metrics.queries.labels(query["kind"]).inc()
            more = found.total > q.offset + len(found.hits) and len(found.hits) == q.k
            out[n] = QueryResult(found.hits, query, took, q.offset, q.offset + q.k if more else None, found.total,
                                 found.total_exact, found.reason)
        return out

    def _rewrites(self, prepared: list, index: ProductIndex) -> dict[int, tuple[str, np.ndarray]]:
        """slot → (the query rewritten into the catalogue's words, its vector), for the hybrid text queries, when
        this server rewrites (`rewriter`); cached, so a repeated query costs a lookup."""
        if not self.config.rewriter:
            return {}
        if self._rewriter is None or self._rewriter_index is not index:  # the vocabulary is the index's categories
            from ..text.rewrite import QueryRewriter

            self._rewriter = QueryRewriter(self.config.rewriter, list(index.category_products()), self.cache,
                                           llm=self._rewriter._llm if self._rewriter is not None else None).load()
            self._rewriter_index = index
        wanted = {}
        for slot, (n, _, _, text, _, query, _) in enumerate(prepared):
            if query["kind"] == "text" and query["retrieval"] == "hybrid":
                try:
                    rewrite = self._rewriter.rewrite(text)
                except ProdlensError as e:  # the rewriter is down: the query is answered without it
                    log.warning("query not rewritten: %s", e)
                    continue
                if rewrite:
                    wanted[slot] = rewrite
        if not wanted:
            return {}
        new = sorted({t for t in wanted.values() if t not in self._rewrite_vectors})
        if new:
            got = self.batcher.submit_many([([], t, None) for t in new], "page")
            if len(self._rewrite_vectors) + len(new) > REWRITE_VECTORS:
                self._rewrite_vectors.clear()  # a bounded memo: a repeated query embeds nothing
            self._rewrite_vectors.update({t: v for t, v in zip(new, got) if not isinstance(v, BaseException)})
        return {i: (t, self._rewrite_vectors[t]) for i, t in wanted.items() if t in self._rewrite_vectors}

    def _prepare(self, q: SearchQuery, index: ProductIndex):
        """(vector if known, frames, text, description, sample to leave out) of a query, every check done."""
        self._check_k(q.k, q.offset)
        if q.domains is not None:
            if not q.domains:
                raise BadQuery("no domain chosen: pick at least one of page, video, live, or leave the domain out to "
                               "search all", 422)
            for d in q.domains:
                if d not in DOMAINS:
                    raise BadQuery(f"unknown domain filter {d!r} (page, video or live)", 422)
        categories = None
        if q.categories:
            folded = self._folded_categories if index is self.index else \
                {c.casefold(): c for c in index.category_products()}
            unknown = [c for c in q.categories if c.strip().casefold() not in folded]
            if unknown:
                shown = ", ".join(sorted(folded.values())) or "none: this index has no categories"
                raise BadQuery(f"unknown category {unknown[0]!r}; the index's categories: {shown}", 422)
            categories = sorted({folded[c.strip().casefold()] for c in q.categories})
        try:
            conditions = parse_filters(q.filters, index.attribute_names())
        except FilterError as e:
            raise BadQuery(str(e), 422) from None
        if q.min_score is not None and not 0.0 <= q.min_score <= 1.0:
            raise BadQuery(f"min_score is a relevance in [0, 1], got {q.min_score}", 422)
        retrieval = q.retrieval or self.config.retrieval
        if retrieval not in RETRIEVALS:
            raise BadQuery(f"retrieval must be one of {', '.join(RETRIEVALS)}, got {retrieval!r}", 422)
        vector, frames, text, reading, query, exclude = self._prepare_input(q, index, retrieval)
        if retrieval == "lexical" and query["kind"] != "text" and not (reading is not None and reading.text):
            raise BadQuery("lexical retrieval needs words: give text (a photo or clip is searched by its vector)", 422)
        query.update(retrieval=retrieval, _categories=categories, _conditions=conditions)
        return vector, frames, text, reading, query, exclude

    def _prepare_input(self, q: SearchQuery, index: ProductIndex, retrieval: str):
        if q.data is not None:
            return None, *self._decode_upload(q.data, q.filename, q.text, q.query_domain), None
        if q.sample_id:
            item = index.item(q.sample_id)
            if item is None:
                raise BadQuery(f"sample {q.sample_id!r} is not in the index", 404)
            query = {"kind": "sample", "sample_id": q.sample_id, "product_id": item.product_id, "domain": item.domain,
                     "title": item.title}
            return index.vector_of(q.sample_id), [], "", None, query, q.sample_id
        if q.text and q.text.strip():
            text, query = self._checked_text(q.text, q.query_domain)
            # a lexical-only search embeds nothing: its vector slot is filled with a placeholder never searched
            vector = np.zeros(index.dim, np.float32) if retrieval == "lexical" else None
            return vector, [], text, None, query, None
        raise BadQuery("nothing to search with: upload a file, or give text or a sample_id")

    def embed(self, *, data: bytes | None = None, filename: str = "upload", text: str = "",
              domain: str | None = None) -> dict:
        """An ad-hoc vector (the index's model, as a query of `domain`) for an upload and/or text."""
        if data is not None:
            vector, query = self.embed_upload(data, filename, text, domain)
        elif text and text.strip():
            vector, query = self.embed_text(text, domain)
        else:
            raise BadQuery("nothing to embed: upload a file or give text")
        return {"vector": [round(float(x), 7) for x in vector], "dim": int(len(vector)), "query": query,
                "model_id": self.index.model_id, "model": self.model.name}

    def _check_k(self, k: int, offset: int = 0) -> None:
        if not 1 <= k <= self.config.max_k:
            raise BadQuery(f"k must be between 1 and {self.config.max_k}, got {k}", 422)
        if offset < 0 or offset + k > self.config.max_offset:
            raise BadQuery(f"offset must be ≥ 0 with offset + k ≤ {self.config.max_offset}, got offset {offset}", 422)

    def recommend(self, user: str | None = None, history: list[str] | None = None, k: int = 10) -> list[dict]:
        """Next items for a known user, or for an explicit history (item ids, oldest first). When the recommender's
        items are catalogue products, results carry the product page's thumbnail."""
        if self.recommender is None:
            raise BadQuery("this server has no recommender (start it with --rec RUN_DIR)", 404)
        self._check_k(k)
        try:
            if user is not None:
                history = self.recommender.history_of(user)
            elif not history:
                raise BadQuery("give a user id or a non-empty history of item ids")
        except KeyError as e:
            raise BadQuery(str(e).strip("'\""), 404) from None
        self.recommender.check_history(list(history))  # an unknown item fails this request here, not its batch
        hits = self.rec_batcher.submit((list(history), k))
        for h in hits:
            h["thumbnail"] = self._thumbnails.get(h["item_id"], "")
        return hits

    def _recommend_batch(self, requests: list[tuple[list[str], int]], _key) -> list[list[dict]]:
        deepest = max(k for _, k in requests)
        hits = self.recommender.recommend_histories([history for history, _ in requests], deepest)
        return [found[:k] for found, (_, k) in zip(hits, requests)]

    def check_reader(self, key: str | None) -> None:
        """With a read key set, searches take it (or the write key) in X-API-Key."""
        if self._read_key is None:
            return
        given = (key or "").encode()
        if not any(k is not None and hmac.compare_digest(given, k.encode()) for k in (self._read_key, self._api_key)):
            raise BadQuery("a valid X-API-Key header is required: this server's searches take its read key", 401)

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
        return {**rec.remove_items(ids), "items": len(rec.table)}

    # -- documents ------------------------------------------------------------------------------------------------
    def _checked_id(self, product_id: str) -> str:
        if not ITEM_ID.match(product_id or ""):
            raise BadQuery(f"product_id {product_id!r}: use 1-128 letters, digits, '.', '_' or '-' (starting with a "
                           "letter or digit)", 422)
        return product_id

    @contextlib.contextmanager
    def _editing(self):
        """The index as saved now, to edit under this server's write lock; saved and served when the block ends
        (not when it raises)."""
        with self._write_lock:
            index = ProductIndex.open(self.index.path)
            yield index
            index.save()
            self._use_index(index)

    def put_item(self, doc: ItemDocument) -> dict:
        """Create or replace a product's page (embedded by the index's model as `prodlens index add` does; its other
        page samples go, its clips stay); searchable by this server when this returns, by other workers within
        `reload_seconds`."""
        self._checked_id(doc.product_id)
        if not doc.image:
            raise BadQuery(f"item {doc.product_id}: a product page needs a picture (image_base64 or a file)", 422)
        if not _looks_like_image(doc.image):
            raise BadQuery(f"item {doc.product_id}: the picture is not an image this server can read", 415)
        bad_names = [k for k in doc.attributes if not isinstance(k, str) or not k.strip() or k in PRODUCT_COLUMNS]
        if bad_names:
            raise BadQuery(f"item {doc.product_id}: attribute name {bad_names[0]!r} is empty or a field of its own", 422)
        from ..catalog import load_folder

        with tempfile.TemporaryDirectory(prefix="prodlens-item-") as tmp:
            root = Path(tmp)
            (root / "page" / doc.product_id).mkdir(parents=True)
            (root / "page" / doc.product_id / f"{API_SAMPLE}.jpg").write_bytes(doc.image)
            names = sorted(doc.attributes)
            with open(root / "products.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["product_id", "title", "category", "description", *names])
                writer.writerow([doc.product_id, doc.title, doc.category, doc.description,
                                 *(_attribute_text(doc.attributes[n]) for n in names)])
            catalog = load_folder(root)
            if catalog.bad:
                raise BadQuery(f"item {doc.product_id}: {catalog.bad.items[0].problem}", 422)
            with self._editing() as index:
                pages = [it.sample_id for it in index.samples_of(doc.product_id) if it.domain == "page"]
                index.remove(sample_ids=[sid for sid in pages if sid != f"page/{doc.product_id}/{API_SAMPLE}"])
                try:
                    _, added, replaced, bad = embed_into(index, catalog, self.model, self.features, progress=False)
                except RecordError as e:
                    raise BadQuery(str(e), 422) from None
                if bad and not (added or replaced):
                    raise BadQuery(f"item {doc.product_id}: {bad.items[0].problem}", 422)
        return {"product_id": doc.product_id, "result": "updated" if pages else "created",
                "version": index.record.get("version")}

    def get_item(self, product_id: str) -> dict:
        samples = self.index.samples_of(product_id)
        if not samples:
            raise BadQuery(f"no product {product_id!r} in the index", 404)
        first = next((it for it in samples if it.domain == "page"), samples[0])
        return {"product_id": product_id, "title": first.title, "category": first.category,
                "attributes": first.attributes,
                "samples": [{"sample_id": it.sample_id, "domain": it.domain, "title": it.title,
                             "thumbnail": it.thumbnail} for it in sorted(samples, key=lambda it: it.sample_id)]}

    def patch_item(self, product_id: str, changes: dict, image: bytes | None = None) -> dict:
        """Change a product's category or attributes (an attribute set to null is removed) on every sample of it;
        a new title or description is embedded, so it comes with a new picture (then the page is replaced)."""
        current = self.get_item(product_id)
        attributes = {**current["attributes"], **(changes.get("attributes") or {})}
        attributes = {k: v for k, v in attributes.items() if v is not None}
        if image is not None or any(changes.get(f) is not None for f in EMBEDDED_FIELDS):
            if image is None:
                raise BadQuery(f"item {product_id}: the title and description are embedded with the picture; send "
                               "image_base64 with them (or POST the whole item)", 422)
            return self.put_item(ItemDocument(product_id, changes.get("title") or current["title"],
                                              changes.get("category") or current["category"],
                                              changes.get("description") or "", attributes, image))
        with self._editing() as index:
            items = index.samples_of(product_id)
            if not items:
                raise BadQuery(f"no product {product_id!r} in the index", 404)
            category = changes.get("category") if changes.get("category") is not None else items[0].category
            ids = [it.id for it in items]
            info = IndexInfo()
            for it in items:
                info.titles[it.sample_id] = it.title
                info.categories[it.sample_id] = category
                info.texts[it.sample_id] = it.text.replace(it.category, category) if it.category else \
                    f"{it.text} \n{category}".strip()
                info.reads[it.sample_id] = it.read
                info.attributes[it.sample_id] = attributes
                thumb = index.path / "thumbs" / it.thumbnail
                if it.thumbnail and thumb.is_file():
                    info.thumbnails[it.sample_id] = thumb.read_bytes()
            same = Embeddings([it.sample_id for it in items], [product_id] * len(items), [it.domain for it in items],
                              [it.split for it in items], index.vectors.reconstruct(ids), {"model_id": index.model_id})
            index.add(same, info)
        return {"product_id": product_id, "result": "updated", "version": index.record.get("version")}

    def delete_item(self, product_id: str) -> dict:
        with self._editing() as index:
            removed = index.remove(product_ids=[product_id])
            if not removed:
                raise BadQuery(f"no product {product_id!r} in the index", 404)
        return {"product_id": product_id, "result": "deleted", "samples": removed,
                "version": index.record.get("version")}

    def refresh(self) -> None:
        """The served state brought up to date now (a version saved since the last query, the recommender's new
        items), with the metrics' gauges."""
        self.refresh_index(force=self.config.reload_seconds is not None)
        if self.recommender is not None:
            self.recommender.refresh()
            self.metrics.rec_items.set(len(self.recommender.table))

    def stats(self) -> dict:
        """The served state now: a version saved since the last query is picked up here, not at the next query."""
        self.refresh()
        lat = sorted(self._latencies)
        return {**self.index.stats(), "queries": self.queries, "uptime_s": round(time.time() - self.started, 1),
                "latency_ms_p50": round(statistics.median(lat), 2) if lat else None,
                "latency_ms_p99": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None,
                "asr": self.config.asr, "query_model": self.model.name, "reloads": self.reloads,
                "reload_error": self.reload_error,
                "recommender": None if self.recommender is None else {
                    "model": self.recommender.cfg.model, "items": len(self.recommender.table),
                    "item_table_version": self.recommender.table.version, "users": len(self.recommender.histories)}}


@dataclass
class ItemDocument:
    """A product page sent over HTTP: its id, texts, attributes (brand, price, ...) and picture."""
    product_id: str
    title: str = ""
    category: str = ""
    description: str = ""
    attributes: dict = field(default_factory=dict)
    image: bytes | None = None


def _looks_like_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return bool(img.format)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    except Image.DecompressionBombError:
        return True  # an image, and decode_image will reject it with a clear message



def _attribute_text(value) -> str:
    """An attribute as products.csv holds it (numbers stay numbers: "12.5")."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        raise BadQuery(f"attribute value {value!r}: give a string, a number or a boolean", 422)
    return "" if value is None else str(value)
