"""Dynamic micro-batching: requests arriving together share one pass of the model.

Request threads call `submit(payload, key)` and block. One worker thread takes the first waiting request, then every
request that arrives within `max_wait_ms` (up to `max_batch`), and runs them in one batched call per key (the query
domain for search embeddings). Under load the queue fills while a batch runs, so batches grow with the load and no
request waits more than one batch plus the wait bound; a request alone after a request alone does not wait at all
(one client sees no added latency). A request that fails alone gets its own error: a failing batch is retried one
request at a time so that one bad upload never fails its neighbours. Nothing ends the worker: an error anywhere in
a pass (the model, the metrics hook) fails that pass's requests and the worker takes the next. A waiting request gives
up after `timeout_s` with a `TimeoutError` (the server answers 503), so a stuck model never hangs every caller.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

log = logging.getLogger(__name__)
# (payloads of one key, the key) → one result per payload, in order
BatchFn = Callable[[list, Hashable], Any]


@dataclass
class _Pending:
    payload: Any
    key: Hashable
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class MicroBatcher:
    def __init__(self, run: BatchFn, max_batch: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int, float], None] | None = None, name: str = "prodlens-batcher",
                 timeout_s: float = 60.0):
        """`on_batch(size, seconds)` is told of every batched call (for metrics)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout = timeout_s
        self._run_batch = run
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._on_batch = on_batch
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._last_size = 1
        self._worker = threading.Thread(target=self._run, daemon=True, name=name)
        self._worker.start()

    def submit(self, payload: Any, key: Hashable = "") -> Any:
        """One request's result, or its error raised."""
        out = self.submit_many([payload], key)[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def submit_many(self, payloads: list, key: Hashable = "") -> list:
        """Several requests of one caller: queued together, so they share a pass (with other callers' too). Each
        one's result, or the error it alone raised."""
        pending = [_Pending(p, key) for p in payloads]
        for p in pending:
            self._queue.put(p)
        deadline = time.monotonic() + self.timeout
        for p in pending:
            if not p.done.wait(max(0.0, deadline - time.monotonic())):
                p.error = TimeoutError(f"no result within {self.timeout:g} s (the model is busy or stuck)")
                p.done.set()  # the worker's late result is dropped
        return [p.result if p.error is None else p.error for p in pending]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # a request alone after a request alone does not wait: nobody else is sending. Requests queued already
            # still join; after a batch of several, the next one waits for the others to come back.
            deadline = time.monotonic() + (self.max_wait if self._last_size > 1 else 0.0)
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._last_size = len(batch)
            by_key: dict[Hashable, list[_Pending]] = {}
            for p in batch:
                by_key.setdefault(p.key, []).append(p)
            for key, group in by_key.items():
                try:
                    self._pass(group, key)
                except BaseException as e:  # noqa: BLE001 - the worker must outlive any one pass
                    log.exception("a batch of %d request(s) failed", len(group))
                    for p in group:
                        if not p.done.is_set():
                            p.error = e if isinstance(e, Exception) else RuntimeError(repr(e))
                            p.done.set()

    def _pass(self, group: list[_Pending], key: Hashable) -> None:
        start = time.perf_counter()
        try:
            results = list(self._run_batch([p.payload for p in group], key))
            if len(results) != len(group):
                raise RuntimeError(f"a batch of {len(group)} requests gave {len(results)} results")
        except Exception as e:  # noqa: BLE001 - handed to the waiting request threads
            if len(group) > 1:  # find the culprit: each request alone
                for p in group:
                    self._pass([p], key)
                return
            group[0].error = e
            group[0].done.set()
            return
        for p, result in zip(group, results):
            if not p.done.is_set():  # timed out already: nobody waits for it
                p.result = result
                p.done.set()
        if self._on_batch is not None:
            self._on_batch(len(group), time.perf_counter() - start)
