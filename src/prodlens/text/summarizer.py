"""AMPere's ASR summariser: noisy transcript (+ title) → validated, grounded product facts.

Spoken instructions to the model are cut out of the transcript (and a title holding one is dropped) before any
model reads it, with what they asserted (see `injection`). Output is parsed as JSON, validated with pydantic
(invalid output is asked again with the reason it was rejected and sampled rather than greedy, then reported —
never stored), and grounded (values not supported by the input are dropped). Results are cached in SQLite by backend + prompt version +
input hash, so a rerun or a crash loses nothing already summarised.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..cache import FeatureCache
from ..errors import BadRecords, RecordError
from ..progress import progress_bar
from .backends import BackendError, build_backend
from .extractive import ExtractiveSummarizer
from .facts import ProductFacts
from .grounding import ground_facts
from .injection import asserted_terms, is_instruction, strip_injections
from .prompt import PROMPT_VERSION, Retry, describe_problem, parse_json_object, sanitise_transcript

MAX_INPUT_BYTES = 2 * 1024 * 1024


@dataclass
class Summary:
    facts: ProductFacts
    backend: str
    attempts: int = 1
    dropped: list[str] = field(default_factory=list)  # ungrounded values removed
    removed: list[str] = field(default_factory=list)  # spoken instructions (and their payloads) cut before the model
    truncated: bool = False  # the transcript was longer than the prompt allows
    cached: bool = False

    def to_json(self) -> dict:
        return {**self.facts.model_dump(), "backend": self.backend, "prompt_version": PROMPT_VERSION,
                "dropped_ungrounded": self.dropped, "removed_instructions": self.removed,
                "transcript_truncated": self.truncated, "attempts": self.attempts}


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
            from ..encoders import load_text_encoder

            self._extractive = ExtractiveSummarizer(load_text_encoder(self.text_encoder_spec, self.device))
        return self._extractive

    def summarize(self, transcript: str, title: str = "", record: str = "text") -> Summary:
        job = self._prepare(transcript, title, record)
        return job if isinstance(job, Summary) else self._finish(job, *self._facts(job))

    def _prepare(self, transcript: str, title: str, record: str) -> "Summary | _Job":
        """Validate and clean the input: a cached Summary, or the job of summarising its cleaned text."""
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
        hit = self.cache.get_record(self.model_key, "summary", key)
        if hit is not None:
            return Summary(ProductFacts(**hit["facts"]), self.backend_name, hit["attempts"], hit["dropped"],
                           hit.get("removed", []), truncated, cached=True)
        removed, blocked = [], set()
        if title_clean and is_instruction(title_clean):  # a title holding an instruction is the attacker's text
            removed.append(f"title: {title_clean}")
            blocked |= asserted_terms(title_clean, set())
            title_clean = ""
        speech = strip_injections(clean, title_clean)
        return _Job(record, key, speech.text, title_clean, removed + speech.removed, blocked | speech.blocked,
                    truncated)

    @property
    def model_key(self) -> str:
        return f"{self.backend_name}|{PROMPT_VERSION}"

    def _facts(self, job: "_Job", first_answer: str | None = None) -> tuple[ProductFacts, int]:
        if not job.text and not job.title:
            return ProductFacts(), 0  # nothing but instructions was said
        if self.backend_name == "extractive":
            return self.extractive.summarize(job.text, job.title), 1
        return self._ask_llm(job.text, job.title, job.record, first_answer)

    def _finish(self, job: "_Job", facts: ProductFacts, attempts: int) -> Summary:
        grounded, dropped = ground_facts(facts, f"{job.title} {job.text}", blocked=job.blocked)
        self.cache.put_record(self.model_key, "summary", job.key, {
            "facts": grounded.model_dump(), "attempts": attempts, "dropped": dropped, "removed": job.removed})
        return Summary(grounded, self.backend_name, attempts, dropped, job.removed, job.truncated)

    def _ask_llm(self, transcript: str, title: str, record: str,
                 first_answer: str | None = None) -> tuple[ProductFacts, int]:
        problems, retry = [], None
        for attempt in range(1, self.retries + 2):
            try:
                raw = first_answer if attempt == 1 and first_answer is not None else \
                    self.backend.complete(title, transcript, retry)
            except BackendError as e:
                raise RecordError(record, f"LLM backend failed: {e}") from None
            try:
                return ProductFacts(**parse_json_object(raw)), attempt
            except (ValueError, ValidationError, TypeError) as e:
                problem = describe_problem(e)
                problems.append(f"attempt {attempt}: {problem}")
                retry = Retry(attempt + 1, problem)  # the next request says what was wrong and samples
        raise RecordError(record, "LLM output failed validation (" + "; ".join(problems) + ")")

    def summarize_many(self, items: list[tuple[str, str, str]], concurrency: int = 8,
                       progress: bool = True) -> tuple[dict[str, Summary], BadRecords]:
        """items: (record, transcript, title). An HTTP backend gets `concurrency` requests at once (a server with
        parallel slots decodes them together); an engine with in-process batching (`complete_many`) decodes
        `concurrency` first answers per batch; other engines run one at a time. Cached results are not asked again."""
        bad = BadRecords()
        out: dict[str, Summary] = {}
        with progress_bar(len(items), "summarising", enabled=progress) as advance:
            jobs = []
            for rec, transcript, title in items:
                try:
                    job = self._prepare(transcript, title, rec)
                except RecordError as e:
                    bad.add_error(e, "summarize")
                    advance(1)
                    continue
                if isinstance(job, Summary):
                    out[rec] = job
                    advance(1)
                else:
                    jobs.append(job)
            batched = hasattr(self.backend, "complete_many") and self.backend_name != "extractive"
            workers = concurrency if self.spec.startswith(("http://", "https://")) else 1
            for start in range(0, len(jobs), concurrency if batched else len(jobs) or 1):
                chunk = jobs[start:start + concurrency] if batched else jobs
                answers = self._first_answers(chunk) if batched else [None] * len(chunk)
                with cf.ThreadPoolExecutor(max_workers=workers) as pool:
                    futures = {pool.submit(self._facts, job, answer): job for job, answer in zip(chunk, answers)}
                    for fut in cf.as_completed(futures):
                        job = futures[fut]
                        try:
                            out[job.record] = self._finish(job, *fut.result())
                        except RecordError as e:
                            bad.add_error(e, "summarize")
                        advance(1)
        return out, bad

    def _first_answers(self, jobs: list["_Job"]) -> list[str | None]:
        asked = [j for j in jobs if j.text or j.title]
        try:
            answers = iter(self.backend.complete_many([(j.title, j.text) for j in asked]))
        except BackendError:
            return [None] * len(jobs)  # each job asks again on its own and reports its own failure
        return [next(answers) if (j.text or j.title) else None for j in jobs]


@dataclass
class _Job:
    """One transcript to summarise, after validation and injection removal."""
    record: str
    key: str  # cache key of the raw (sanitised) input
    text: str  # the transcript the model reads
    title: str
    removed: list[str]
    blocked: set[str]
    truncated: bool
