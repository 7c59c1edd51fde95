"""Prometheus metrics of the service: requests, latencies, forward-pass batch sizes, index and recommender size.

With several server processes (`prodlens serve --workers N`) each process writes its samples under
$PROMETHEUS_MULTIPROC_DIR (set by the CLI before the workers start) and /metrics, answered by any of them, sums
them all (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("prodlens_requests", "HTTP requests by route and status", ["method", "route", "status"],
                                registry=r)
        self.latency = Histogram("prodlens_request_seconds", "HTTP request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.queries = Counter("prodlens_queries", "search queries by kind (image, video, text, sample)", ["kind"],
                               registry=r)
        self.batch_size = Histogram("prodlens_batch_size", "queries embedded per forward pass", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("prodlens_batch_seconds", "time of one batched forward pass",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.rec_batch_size = Histogram("prodlens_rec_batch_size", "recommendation requests per user-tower pass",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.rec_batch_seconds = Histogram("prodlens_rec_batch_seconds", "time of one batched recommendation pass",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.index_items = Gauge("prodlens_index_items", "vectors in the served index", registry=r,
                                 multiprocess_mode="max")
        self.index_version = Gauge("prodlens_index_version", "version of the served index", registry=r,
                                   multiprocess_mode="max")
        self.rec_items = Gauge("prodlens_recommender_items", "items in the recommender's item table", registry=r,
                               multiprocess_mode="max")

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def observe_rec_batch(self, size: int, seconds: float) -> None:
        self.rec_batch_size.observe(size)
        self.rec_batch_seconds.observe(seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
