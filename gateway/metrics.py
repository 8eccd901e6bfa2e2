"""Prometheus metrics, one registry per app. Labels stay low-cardinality: route templates,
served model ids and upstream URLs (both bounded by configuration), never keys or paths."""

from __future__ import annotations

import os
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# First-token and whole-request latencies of a 70B model span milliseconds to minutes.
# Waking a sleeping 70B takes seconds; starting an engine process, minutes.
_SWITCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_M = TypeVar("_M", bound=MetricWrapperBase)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "Requests answered.", ["route", "model", "status"], registry=r
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the last byte of the response.",
            ["route", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the first streamed chunk.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens metered, by kind (prompt|completion).",
            ["model", "kind"],
            registry=r,
        )
        # multiprocess_mode only matters under `--workers N` (PROMETHEUS_MULTIPROC_DIR).
        self.in_flight = Gauge(
            "gateway_requests_in_flight",
            "Requests being handled.",
            ["route"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Failed upstream calls by kind (connect|timeout|status|stream).",
            ["upstream", "kind"],
            registry=r,
        )
        self.upstream_healthy = Gauge(
            "gateway_upstream_healthy",
            "1 if the upstream passed its last health check.",
            ["upstream"],
            registry=r,
            multiprocess_mode="livemin",  # healthy only if every worker thinks so
        )
        self.client_disconnects = Counter(
            "gateway_client_disconnects",
            "Requests whose client left before the end.",
            ["route"],
            registry=r,
        )
        # Engine groups (gateway.upstream.switching): models sharing one device.
        self.engine_switches = Counter(
            "gateway_engine_switches",
            "Engine sleeps and wakes, by group, model, op (sleep|wake) and result (ok|failed).",
            ["group", "model", "op", "result"],
            registry=r,
        )
        self.engine_switch_duration = Histogram(
            "gateway_engine_switch_duration_seconds",
            "Time one engine took to go to sleep or wake up (sleep|wake).",
            ["group", "op"],
            buckets=_SWITCH_BUCKETS,
            registry=r,
        )
        self.engine_queue_depth = Gauge(
            "gateway_engine_queue_depth",
            "Requests waiting for their model's engine to wake.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.engine_switch_wait = Histogram(
            "gateway_engine_switch_wait_seconds",
            "Time requests waited for their model's engine before going to it.",
            ["model"],
            buckets=_SWITCH_BUCKETS,
            registry=r,
        )
        self.engine_awake = Gauge(
            "gateway_engine_awake",
            "1 while the model's engine is awake (it takes requests), else 0.",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # Label children of the two per-request series, by (route, model, status): the label
        # sets are bounded, and `labels()` on every request costs a lock and a validation.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}
        self.key_lookups = Counter(
            "gateway_key_lookups",
            "Key checks by outcome: cache hit|negative, db (queries made), stale (served "
            "during an outage), unavailable (503), malformed.",
            ["result"],
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused by a limit, by kind.", ["kind"], registry=r
        )
        self.limiter_backend = Gauge(
            "gateway_limiter_backend",
            "Processes whose rate limiter uses this backend now (memory|redis).",
            ["backend"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.limiter_fallbacks = Counter(
            "gateway_limiter_fallbacks",
            "Times the rate limiter lost Redis and fell back to per-replica memory.",
            registry=r,
        )
        self.limiter_redis_errors = Counter(
            "gateway_limiter_redis_errors",
            "Failed limiter calls to Redis, by operation (admit|settle).",
            ["op"],
            registry=r,
        )
        # Usage metering: the batch writer's health (gateway.usage.writer).
        self.usage_events_written = Counter(
            "gateway_usage_events_written", "Usage events committed to Postgres.", registry=r
        )
        self.usage_events_dropped = Counter(
            "gateway_usage_events_dropped",
            "Usage events lost, by reason (buffer_full|rejected|shutdown).",
            ["reason"],
            registry=r,
        )
        self.usage_flush_duration = Histogram(
            "gateway_usage_flush_duration_seconds",
            "Time to write one batch of usage events (one transaction).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.usage_flush_failures = Counter(
            "gateway_usage_flush_failures", "Batches that failed to write (retried).", registry=r
        )
        self.usage_events_buffered = Gauge(
            "gateway_usage_events_buffered",
            "Usage events waiting to be written.",
            registry=r,
            multiprocess_mode="livesum",
        )

    def child(self, metric: _M, *labels: str) -> _M:
        """`metric.labels(*labels)`, cached: for the series every request touches (labels
        bounded by configuration: routes, served models)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]

    def request_done(self, route: str, model: str, status: int, elapsed_s: float) -> None:
        key = (route, model, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, model, str(status)),
                self.duration.labels(route, model),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(elapsed_s)


def exposition(metrics: Metrics) -> bytes:
    """The text for /metrics: this process's registry, or every worker's when several run."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(metrics.registry)
