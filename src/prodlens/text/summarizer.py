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
import re
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from ..cache import FeatureCache, model_key
from ..errors import BadRecords, RecordError
from ..progress import progress_bar
from .anchor import clause_features, shipped_anchor
from .backends import BackendError, backend_identity, build_backend
from .detector import shipped_detector
from .evidence import EVIDENCE_VERSION, EvidenceScorer, Identity
from .extractive import EXTRACTIVE_VERSION, ExtractiveSummarizer, split_sentences
from .facts import ProductFacts
from .grounding import ground_facts
from .injection import asserted_terms, is_instruction, mentions_blocked, remove_terms, strip_injections
from .prompt import JUDGE_VERSION, PROMPT_VERSION, Retry, describe_problem, parse_json_object, sanitise_transcript

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
                 text_encoder: str = "minilm", device: str = "cpu", detector=None):
        self.spec = backend or "extractive"
        self.cache = cache or FeatureCache(None)
        self.retries = retries
        self.text_encoder_spec, self.device = text_encoder, device
        self._backend = None
        self._extractive = None
        self._evidence = None
        self._detector = detector  # an InjectionDetector; the shipped one when None
        self._identity = None  # the backend's engine and weights, computed once
        self._anchor = None  # the speech anchor's fitted gate (anchored speech)

    @property
    def backend_name(self) -> str:
        return "extractive" if self.spec in ("", "extractive", "none") else self.spec

    @property
    def judge(self) -> bool:
        """"judge:<llm>": the extractive facts, with the LLM choosing the product among the evidence's candidates
        (it reads and ranks, it does not write)."""
        return self.spec.startswith("judge:")

    @property
    def backend(self):
        if self._backend is None and self.backend_name != "extractive":
            self._backend = build_backend(self.spec.removeprefix("judge:") or "llm", self.device)
        return self._backend

    @property
    def extractive(self) -> ExtractiveSummarizer:
        if self._extractive is None:
            from ..encoders import load_text_encoder

            self._extractive = ExtractiveSummarizer(load_text_encoder(self.text_encoder_spec, self.device))
        return self._extractive

    @property
    def evidence(self) -> EvidenceScorer:
        if self._evidence is None:
            self._evidence = EvidenceScorer(self.extractive.encoder)
        return self._evidence

    @property
    def detector(self):
        if self._detector is None:
            self._detector = shipped_detector()
        return self._detector

    def summarize(self, transcript: str, title: str = "", record: str = "text", visual=None,
                  read: str | None = None) -> Summary:
        """`visual`: the clip's frames as a vector in the text encoder's space; `read`: the text OCR read in its
        frames (both optional evidence of identity)."""
        job = self._prepare(transcript, title, record, visual, read)
        return job if isinstance(job, Summary) else self._finish(job, *self._facts(job))

    def _prepare(self, transcript: str, title: str, record: str, visual=None, read: str | None = None
                 ) -> "Summary | _Job":
        """Validate and clean the input: a cached Summary, or the job of summarising its cleaned text."""
        clean, title_clean, truncated, key = _validated(transcript, title, record, visual, read)
        hit = self.cache.get_record(self.model_key, "summary", key)
        if hit is not None:
            return Summary(ProductFacts(**hit["facts"]), self.backend_name, hit["attempts"], hit["dropped"],
                           hit.get("removed", []), truncated, cached=True)
        return self._weigh(record, key, clean, title_clean, truncated, visual, read)

    def _weigh(self, record: str, key: str, clean: str, title_clean: str, truncated: bool, visual,
               read: str | None = None) -> "_Job":
        """The defence and the evidence: flagged clauses out, the product identified, rival windows out."""
        removed, blocked = [], set()
        if title_clean and is_instruction(title_clean):  # a title holding an instruction is the attacker's text
            removed.append(f"title: {title_clean}")
            blocked |= asserted_terms(title_clean, set())
            title_clean = ""
        speech = strip_injections(clean, title_clean, self.detector)
        identity = self.evidence.identify(speech.kept, title_clean, speech.addressed, visual, self.detector, read)
        blocked |= speech.blocked
        kept = summary_windows(speech.kept, identity)
        return _Job(record, key, " ".join(kept), title_clean, removed + speech.removed, blocked, truncated, kept,
                    identity, speech.text, speech.kept, speech.addressed, read)

    @property
    def gate_key(self) -> str:
        """What decides gated speech: the evidence, the detector and the text encoder the evidence reads with (no
        backend, no prompt, no extractor)."""
        return model_key("gate", evidence=EVIDENCE_VERSION, detector=self.detector.version,
                         text_encoder=self._text_encoder_identity)

    @property
    def _text_encoder_identity(self) -> str:
        from ..encoders import weights_digest

        return f"{self.text_encoder_spec}#{weights_digest(self.text_encoder_spec)}"

    def gate_many(self, items: list[tuple], progress: bool = False) -> tuple[dict[str, str], BadRecords]:
        """items: (record, transcript, title[, visual[, read]]) → the speech as said, less what the evidence rejects:
        clauses spoken to a machine, and windows naming a product that the title, the frames (`visual`, in the text
        encoder's space; `read`, the text read in them) and the rest of the speech do not support. The speech gate of the clip embedding
        (`EmbedConfig(speech="gated")`): a spoken lie or another product named moves a clip less. Cached."""
        return self._speech_many(items, self.gate_key, "gated", lambda job: job.text, "gating speech", "gate",
                                 progress)

    def _speech_many(self, items: list[tuple], key: str, kind: str, text_of, label: str, stage: str,
                     progress: bool) -> tuple[dict[str, str], BadRecords]:
        """items: (record, transcript, title[, visual[, read]]) → `text_of` the weighed job of each, cached under
        `key` (computed once: it hashes weights) and `kind`; a record that cannot be read is reported under `stage`."""
        bad = BadRecords()
        out: dict[str, str] = {}
        with progress_bar(len(items), label, enabled=progress) as advance:
            for rec, transcript, title, *evidence in items:
                try:
                    vis, read = (list(evidence) + [None, None])[:2]
                    clean, title_clean, truncated, digest = _validated(transcript, title, rec, vis, read)
                    hit = self.cache.get_record(key, kind, digest)
                    if hit is None:
                        hit = {"text": text_of(self._weigh(rec, digest, clean, title_clean, truncated, vis, read))}
                        self.cache.put_record(key, kind, digest, hit)
                    out[rec] = hit["text"]
                except RecordError as e:
                    bad.add_error(e, stage)
                advance(1)
        return out, bad

    @property
    def anchor(self):
        if self._anchor is None:
            self._anchor = shipped_anchor()
        return self._anchor

    @property
    def anchor_key(self) -> str:
        """What decides anchored speech: the gate's weights, the evidence, the detector and the text encoder."""
        return model_key("anchored", anchor=self.anchor.version, evidence=EVIDENCE_VERSION,
                         detector=self.detector.version, text_encoder=self._text_encoder_identity)

    def anchored_clauses(self, transcript: str, title: str = "", record: str = "speech", visual=None,
                         read: str | None = None) -> tuple[list[str], np.ndarray]:
        """(the clauses the defence kept, their `anchor.FEATURES`), uncached: what the gate is fitted on."""
        clean, title_clean, truncated, key = _validated(transcript, title, record, visual, read)
        job = self._weigh(record, key, clean, title_clean, truncated, visual, read)
        return job.clauses, self._clause_features(job)

    def _clause_features(self, job: "_Job") -> np.ndarray:
        return clause_features(self.evidence, job.clauses, job.addressed, job.identity, job.title, job.read)

    def _anchored_text(self, job: "_Job") -> str:
        keep = self.anchor.keeps(self._clause_features(job))
        return ". ".join(c for c, k in zip(job.clauses, keep) if k)

    def anchor_many(self, items: list[tuple], progress: bool = False) -> tuple[dict[str, str], BadRecords]:
        """items: (record, transcript, title[, visual[, read]]) → the clauses of the speech that the fitted gate
        (`anchor.SpeechAnchor`) judges to agree with the trusted evidence — the title, the text printed in the
        frames — joined: `EmbedConfig(speech="anchored")`. Cached by the gate's identity."""
        return self._speech_many(items, self.anchor_key, "anchored", self._anchored_text, "anchoring speech",
                                 "anchor", progress)

    @property
    def model_key(self) -> str:
        """Everything that decides a summary: the backend (its engine and weights), the prompt, the defence's
        detector, the evidence, the extractor and the text encoder they read with."""
        if self._identity is None:
            self._identity = backend_identity(self.spec.removeprefix("judge:"), self.device)
        return model_key(self.backend_name, prompt=JUDGE_VERSION if self.judge else PROMPT_VERSION,
                         evidence=EVIDENCE_VERSION, extractor=EXTRACTIVE_VERSION, detector=self.detector.version,
                         text_encoder=self._text_encoder_identity, **self._identity)

    def _facts(self, job: "_Job", first_answer: str | None = None) -> tuple[ProductFacts, int]:
        if not job.text and not job.title and job.identity.winner is None:
            return ProductFacts(), 0  # nothing but instructions was said
        if self.backend_name == "extractive" or not job.text or self.judge:
            facts = self.extractive.summarize(job.kept, job.title)
            chosen = self._judged(job) if self.judge else job.identity.winner
            return facts.model_copy(update={"product_name": (chosen.name if chosen else "")[:120],
                                            "brand": (chosen.brand if chosen else "")[:120]}), 1
        facts, attempts = self._ask_llm(job.text, job.title, job.record, first_answer, job.choices)
        return settle_identity(facts, job.identity), attempts

    def _finish(self, job: "_Job", facts: ProductFacts, attempts: int) -> Summary:
        grounded, dropped = ground_facts(facts, f"{job.title} {job.spoken}", blocked=job.blocked)
        grounded, dropped = drop_rivals(grounded, job.identity.blocked, dropped)
        self.cache.put_record(self.model_key, "summary", job.key, {
            "facts": grounded.model_dump(), "attempts": attempts, "dropped": dropped, "removed": job.removed})
        return Summary(grounded, self.backend_name, attempts, dropped, job.removed, job.truncated)

    def _judged(self, job: "_Job"):
        """The candidate the LLM judges to be the product; the evidence's winner when there is nothing to choose
        or the answer names no candidate."""
        choices = job.identity.choices
        if len(choices) < 2:
            return job.identity.winner
        try:
            raw = self.backend.choose(job.title, job.text, [c.name for c in choices])
        except BackendError as e:
            raise RecordError(job.record, f"LLM backend failed: {e}") from None
        try:
            picked = str(parse_json_object(raw).get("product_name", ""))
        except ValueError:
            picked = raw.split('"')[0]  # a completion model continues inside the JSON string
        return next((c for c in choices if _norm(c.name) == _norm(picked)), job.identity.winner)

    def _ask_llm(self, transcript: str, title: str, record: str, first_answer: str | None = None,
                 choices: list[tuple[str, str]] | None = None) -> tuple[ProductFacts, int]:
        problems, retry = [], None
        for attempt in range(1, self.retries + 2):
            try:
                raw = first_answer if attempt == 1 and first_answer is not None else \
                    self.backend.complete(title, transcript, retry, choices=choices)
            except BackendError as e:
                raise RecordError(record, f"LLM backend failed: {e}") from None
            try:
                return ProductFacts(**parse_json_object(raw)), attempt
            except (ValueError, ValidationError, TypeError) as e:
                problem = describe_problem(e)
                problems.append(f"attempt {attempt}: {problem}")
                retry = Retry(attempt + 1, problem)  # the next request says what was wrong and samples
        raise RecordError(record, "LLM output failed validation (" + "; ".join(problems) + ")")

    def summarize_many(self, items: list[tuple], concurrency: int = 8,
                       progress: bool = True) -> tuple[dict[str, Summary], BadRecords]:
        """items: (record, transcript, title[, visual[, read]]). An HTTP backend gets `concurrency` requests at once (a server with
        parallel slots decodes them together); an engine with in-process batching (`complete_many`) decodes
        `concurrency` first answers per batch; other engines run one at a time. Cached results are not asked again."""
        bad = BadRecords()
        out: dict[str, Summary] = {}
        with progress_bar(len(items), "summarising", enabled=progress) as advance:
            jobs = []
            for rec, transcript, title, *evidence in items:
                try:
                    job = self._prepare(transcript, title, rec, *evidence[:2])
                except RecordError as e:
                    bad.add_error(e, "summarize")
                    advance(1)
                    continue
                if isinstance(job, Summary):
                    out[rec] = job
                    advance(1)
                else:
                    jobs.append(job)
            batched = self.backend_name != "extractive" and not self.judge and hasattr(self.backend, "complete_many")
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
            answers = iter(self.backend.complete_many([(j.title, j.text, j.choices) for j in asked]))
        except BackendError:
            return [None] * len(jobs)  # each job asks again on its own and reports its own failure
        return [next(answers) if (j.text or j.title) else None for j in jobs]


def _validated(transcript: str, title: str, record: str, visual=None, read: str | None = None
               ) -> tuple[str, str, bool, str]:
    """(transcript, title) sanitised, whether the transcript was cut, and the cache key of the input."""
    for name, value in (("transcript", transcript), ("title", title)):
        if not isinstance(value, str):
            raise RecordError(record, f"{name} is not text")
        if len(value.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
            raise RecordError(record, f"{name} is over {MAX_INPUT_BYTES} bytes")
    clean, truncated = sanitise_transcript(transcript)
    title_clean, _ = sanitise_transcript(title, 300)
    if not clean and not title_clean:
        raise RecordError(record, "empty text: nothing to summarise")
    digest = hashlib.sha256(f"{title_clean}\x00{clean}".encode())
    if visual is not None:
        digest.update(np.asarray(visual, np.float32).round(4).tobytes())
    if read:
        digest.update(b"\x00read\x00" + read.encode("utf-8", "surrogatepass"))
    return clean, title_clean, truncated, digest.hexdigest()


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
    kept: list[str]  # the clauses the summary may be built from (rival products' words deleted)
    identity: Identity
    spoken: str  # all kept speech: what names are grounded against
    clauses: list[str] = field(default_factory=list)  # the clauses the defence kept, as said
    addressed: list[float] = field(default_factory=list)  # per clause: the detector's p(spoken to a machine)
    read: str | None = None  # the text OCR read in the frames

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(product name, brand) pairs an LLM may choose among."""
        return [(c.name, c.brand) for c in self.identity.choices]


def drop_rivals(facts: ProductFacts, rivals: set[str], dropped: list[str]) -> tuple[ProductFacts, list[str]]:
    """Category and summary sentences that name a rival product go (attributes may: "smells like green apple")."""
    if not rivals:
        return facts, dropped
    category = facts.category
    if category and mentions_blocked(category, rivals):
        dropped = [*dropped, f"category={category!r} (names another product)"]
        category = ""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+|(?<=[。！？])", facts.summary):
        if sentence.strip() and mentions_blocked(sentence, rivals):
            dropped = [*dropped, f"summary sentence={sentence.strip()!r} (names another product)"]
        elif sentence.strip():
            kept.append(sentence.strip())
    return facts.model_copy(update={"category": category, "summary": " ".join(kept)}), dropped


def summary_windows(clauses: list[str], identity: Identity) -> list[str]:
    """The speech a summary may be built from: a window naming a rival product (a claim the evidence rejected,
    another product) stays out, unless it also names the product itself — then only the rival's words go."""
    own = (identity.winner.words if identity.winner else set())
    out = []
    for window in (w for c in clauses for w in split_sentences(c)):
        if not mentions_blocked(window, identity.blocked):
            out.append(window)
        elif own and mentions_blocked(window, own):
            out.append(remove_terms(window, identity.blocked))
    return [w for w in out if w]


def settle_identity(facts: ProductFacts, identity: Identity) -> ProductFacts:
    """An LLM's product name and brand must be among the evidence's choices; anything else (an engine without
    constrained decoding, a free-writing server) is replaced by the evidence's winner."""
    written = set(_norm(facts.product_name).split())
    # the name of a choice, or part of it ("organic shampoo" of "lumo organic shampoo"): the same product
    chosen = next((c for c in identity.choices if written and written <= set(_norm(c.name).split())), None)
    if chosen is None:
        return facts.model_copy(update={"product_name": identity.product_name[:120], "brand": identity.brand[:120]})
    brands = {_norm(c.brand) for c in identity.choices if c.brand} | {_norm(identity.brand)}
    brand = facts.brand if _norm(facts.brand) in brands else chosen.brand
    return facts.model_copy(update={"product_name": facts.product_name[:120], "brand": brand[:120]})


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
