"""Dynamic micro-batching: queries arriving together share one forward pass.

Request threads call `embed(frames, text, domain)` and block. One worker thread takes the first waiting query, then
every query that arrives within `max_wait_ms` (up to `max_batch`), and embeds them in one batched call per query
domain. Under load the queue fills while a batch runs, so batches grow with the load and no query waits more than
one batch plus the wait bound; alone, a query waits only the bound. A query that fails alone gets its own error: a
failing batch is retried one query at a time so that one bad upload never fails its neighbours.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

EmbedFn = Callable[[list, list, str], np.ndarray]  # (frames per query, texts, domain) → (N, D)


@dataclass
class _Pending:
    frames: list
    text: str
    domain: str
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None


class MicroBatcher:
    def __init__(self, embed: EmbedFn, max_batch: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int, float], None] | None = None):
        """`on_batch(size, seconds)` is told of every forward pass (for metrics)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._embed = embed
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._on_batch = on_batch
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._worker = threading.Thread(target=self._run, daemon=True, name="prodlens-batcher")
        self._worker.start()

    def embed(self, frames: list, text: str, domain: str) -> np.ndarray:
        out = self.embed_many([(frames, text)], domain)[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def embed_many(self, queries: list[tuple[list, str]], domain: str) -> list[np.ndarray | BaseException]:
        """Several queries of one request: queued together, so they share a pass (with other requests' too). Each
        query's vector, or the error embedding it alone raised."""
        pending = [_Pending(list(frames), text, domain) for frames, text in queries]
        for p in pending:
            self._queue.put(p)
        for p in pending:
            p.done.wait()
        return [p.vector if p.error is None else p.error for p in pending]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            by_domain: dict[str, list[_Pending]] = {}
            for p in batch:
                by_domain.setdefault(p.domain, []).append(p)
            for domain, group in by_domain.items():
                self._pass(group, domain)

    def _pass(self, group: list[_Pending], domain: str) -> None:
        start = time.perf_counter()
        try:
            vectors = self._embed([p.frames for p in group], [p.text for p in group], domain)
        except Exception as e:  # noqa: BLE001 - handed to the waiting request threads
            if len(group) > 1:  # find the culprit: each query alone
                for p in group:
                    self._pass([p], domain)
                return
            group[0].error = e
            group[0].done.set()
            return
        if self._on_batch is not None:
            self._on_batch(len(group), time.perf_counter() - start)
        for p, v in zip(group, vectors):
            p.vector = v
            p.done.set()
