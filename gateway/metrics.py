"""Prometheus metrics, one registry per app. Labels stay low-cardinality: route templates,
served model ids and upstream URLs (both bounded by configuration), never keys or paths."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# First-token and whole-request latencies of a 70B model span milliseconds to minutes.
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
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "Requests being handled.", ["route"], registry=r
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
        )
        self.client_disconnects = Counter(
            "gateway_client_disconnects",
            "Requests whose client left before the end.",
            ["route"],
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "Requests refused by a limit, by kind.", ["kind"], registry=r
        )
