"""AMPere's ASR summariser: noisy transcript (+ title) → validated, grounded product facts.

Output is parsed as JSON, validated with pydantic (invalid output is asked again with the reason it was rejected and
sampled rather than greedy, then reported — never stored), and
grounded (values not supported by the input are dropped). Results are cached in SQLite by backend + prompt version +
input hash, so a rerun or a crash loses nothing already summarised.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..embed.cache import FeatureCache
from ..errors import BadRecords, RecordError
from ..progress import progress_bar
from .backends import BackendError, build_backend
from .extractive import ExtractiveSummarizer
from .facts import ProductFacts
from .grounding import ground_facts
from .prompt import PROMPT_VERSION, Retry, describe_problem, parse_json_object, sanitise_transcript

MAX_INPUT_BYTES = 2 * 1024 * 1024


@dataclass
class Summary:
    facts: ProductFacts
    backend: str
    attempts: int = 1
    dropped: list[str] = field(default_factory=list)  # ungrounded values removed
    truncated: bool = False  # the transcript was longer than the prompt allows
    cached: bool = False

    def to_json(self) -> dict:
        return {**self.facts.model_dump(), "backend": self.backend, "prompt_version": PROMPT_VERSION,
                "dropped_ungrounded": self.dropped, "transcript_truncated": self.truncated, "attempts": self.attempts}


class Summarizer:
    def __init__(self, backend: str = "extractive", cache: FeatureCache | None = None, retries: int = 2,
                 text_encoder: str = "minilm", device: str = "cpu"):
        self.spec = backend or "extractive"
        self.cache = cache or FeatureCache(None)
        self.retries = retries
        self.text_encoder_spec, self.device = text_encoder, device
        self._backend = None
        self._extractive = None

    @property
    def backend_name(self) -> str:
        return "extractive" if self.spec in ("", "extractive", "none") else self.spec

    @property
    def backend(self):
        if self._backend is None and self.backend_name != "extractive":
            self._backend = build_backend(self.spec, self.device)
        return self._backend

    @property
    def extractive(self) -> ExtractiveSummarizer:
        if self._extractive is None:
            from ..encoders import build_text_encoder

            self._extractive = ExtractiveSummarizer(build_text_encoder(self.text_encoder_spec, self.device))
        return self._extractive

    def summarize(self, transcript: str, title: str = "", record: str = "text") -> Summary:
        for name, value in (("transcript", transcript), ("title", title)):
            if not isinstance(value, str):
                raise RecordError(record, f"{name} is not text")
            if len(value.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
                raise RecordError(record, f"{name} is over {MAX_INPUT_BYTES} bytes")
        clean, truncated = sanitise_transcript(transcript)
        title_clean, _ = sanitise_transcript(title, 300)
        if not clean and not title_clean:
            raise RecordError(record, "empty text: nothing to summarise")
        key = hashlib.sha256(f"{title_clean}\x00{clean}".encode()).hexdigest()
        model_key = f"{self.backend_name}|{PROMPT_VERSION}"
        hit = self.cache.get_record(model_key, "summary", key)
        if hit is not None:
            return Summary(ProductFacts(**hit["facts"]), self.backend_name, hit["attempts"], hit["dropped"],
                           truncated, cached=True)
        if self.backend_name == "extractive":
            facts, attempts = self.extractive.summarize(clean, title_clean), 1
        else:
            facts, attempts = self._ask_llm(clean, title_clean, record)
        grounded, dropped = ground_facts(facts, f"{title_clean} {clean}")
        self.cache.put_record(model_key, "summary", key,
                              {"facts": grounded.model_dump(), "attempts": attempts, "dropped": dropped})
        return Summary(grounded, self.backend_name, attempts, dropped, truncated)

    def _ask_llm(self, transcript: str, title: str, record: str) -> tuple[ProductFacts, int]:
        problems, retry = [], None
        for attempt in range(1, self.retries + 2):
            try:
                raw = self.backend.complete(title, transcript, retry)
            except BackendError as e:
                raise RecordError(record, f"LLM backend failed: {e}") from None
            try:
                return ProductFacts(**parse_json_object(raw)), attempt
            except (ValueError, ValidationError, TypeError) as e:
                problem = describe_problem(e)
                problems.append(f"attempt {attempt}: {problem}")
                retry = Retry(attempt + 1, problem)  # the next request says what was wrong and samples
        raise RecordError(record, "LLM output failed validation (" + "; ".join(problems) + ")")

    def summarize_many(self, items: list[tuple[str, str, str]], concurrency: int = 4,
                       progress: bool = True) -> tuple[dict[str, Summary], BadRecords]:
        """items: (record, transcript, title). HTTP backends run `concurrency` requests at once."""
        bad = BadRecords()
        out: dict[str, Summary] = {}
        workers = concurrency if self.spec.startswith(("http://", "https://")) else 1
        with progress_bar(len(items), "summarising", enabled=progress) as advance, \
                cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self.summarize, t, title, rec): rec for rec, t, title in items}
            for fut in cf.as_completed(futures):
                rec = futures[fut]
                try:
                    out[rec] = fut.result()
                except RecordError as e:
                    bad.add_error(e, "summarize")
                advance(1)
        return out, bad
