"""The request context middleware, at the ASGI level: the request id a client can quote,
what handlers fill in for the access log and the metrics, and what is recorded when the
client leaves before an answer. (Its error boundary: `test_error_boundary.py`.)"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.http.asgi import Receive, Scope, Send, send_bytes
from gateway.http.context import CONTEXT_KEY, RequestContextMiddleware, get_context
from gateway.metrics import Metrics
from tests.http.exchange import Recorder, call, http_scope


class AccessLines:
    """An access log that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, fields: dict[str, Any]) -> None:
        self.lines.append((message, fields))


def stack(app: Any) -> tuple[RequestContextMiddleware, Metrics, AccessLines]:
    metrics, lines = Metrics(), AccessLines()
    return RequestContextMiddleware(app, metrics, lines), metrics, lines


def requests_total(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    found = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                labels = sample.labels
                found[(labels["route"], labels["model"], labels["status"])] = sample.value
    return found


async def test_a_request_without_an_id_gets_a_fresh_one_in_its_answer() -> None:
    middleware, _, lines = stack(Recorder())
    first = await call(middleware, http_scope("/v1/models"))
    second = await call(middleware, http_scope("/v1/models"))
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    assert [fields["request_id"] for _, fields in lines.lines] == ids  # the log says the same


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-from-the-client", True),
        ("x" * 128, True),
        ("x" * 129, False),  # too long for a log line and an upstream header
        ("bad\x1bid", False),  # unprintable: could repaint a terminal reading the log
    ],
)
async def test_a_clients_request_id_is_kept_only_if_short_and_printable(
    given: str, kept: bool
) -> None:
    app = Recorder()
    middleware, _, _ = stack(app)
    exchange = await call(middleware, http_scope("/", headers=[("x-request-id", given)]))
    answered = exchange.headers["x-request-id"]
    assert (answered == given) is kept
    assert get_context(app.scopes[0]).request_id == answered  # handlers see the same id


async def test_what_the_handler_learns_goes_to_the_access_log_and_the_metrics() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        ctx.route, ctx.model, ctx.key_id = "/v1/chat/completions", "fake-model", "key_1"
        ctx.upstream = "http://engine:8000"
        await send_bytes(send, 429, b"{}")

    middleware, metrics, lines = stack(handler)
    exchange = await call(middleware, http_scope("/v1/chat/completions", "POST"))
    assert exchange.status == 429 and exchange.body == b"{}"
    [(message, fields)] = lines.lines
    assert message == "POST /v1/chat/completions 429"
    assert fields["status"] == 429 and fields["duration_ms"] >= 0
    assert (fields["model"], fields["key_id"], fields["upstream"]) == (
        "fake-model",
        "key_1",
        "http://engine:8000",
    )
    assert requests_total(metrics) == {("/v1/chat/completions", "fake-model", "429"): 1.0}


async def test_a_fastapi_route_is_labelled_by_its_template_and_the_rest_other() -> None:
    class Route:
        path = "/v1/files/{file_id}"

    async def fastapi_like(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].startswith("/v1/files/"):
            scope["route"] = Route()  # what Starlette's router records
        await send_bytes(send, 200, b"{}")

    middleware, metrics, _ = stack(fastapi_like)
    await call(middleware, http_scope("/v1/files/file-abc"))
    await call(middleware, http_scope("/some/random/path"))
    # One series per template, never one per file id or scanned path.
    assert requests_total(metrics) == {
        ("/v1/files/{file_id}", "", "200"): 1.0,
        ("other", "", "200"): 1.0,
    }


async def test_a_client_that_left_before_any_answer_is_recorded_as_499() -> None:
    async def abandoned(scope: Scope, receive: Receive, send: Send) -> None:
        return  # the client went away; nothing was sent

    middleware, metrics, lines = stack(abandoned)
    exchange = await call(middleware, http_scope("/v1/chat/completions", "POST"))
    assert exchange.sent == []
    assert lines.lines[0][1]["status"] == 499
    assert requests_total(metrics) == {("other", "", "499"): 1.0}


async def test_a_failure_after_the_answer_started_sends_no_second_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "gateway.error")

    async def streams_then_fails(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        raise RuntimeError("engine gone mid-stream")

    middleware, _, lines = stack(streams_then_fails)
    exchange = await call(middleware, http_scope("/v1/chat/completions", "POST"))
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert exchange.status == 200 and lines.lines[0][1]["status"] == 200
    rid = exchange.headers["x-request-id"]
    assert [r.request_id for r in caplog.records] == [rid]  # type: ignore[attr-defined]


async def test_lifespan_and_websocket_scopes_pass_through_without_a_context() -> None:
    app = Recorder()
    middleware, metrics, lines = stack(app)
    for kind in ("lifespan", "websocket"):
        scope: Scope = {"type": kind, "asgi": {"version": "3.0"}}
        await call(middleware, scope)
        assert CONTEXT_KEY not in scope
    assert len(app.scopes) == 2 and lines.lines == [] and requests_total(metrics) == {}
    assert b"gateway_requests_total{" not in generate_latest(metrics.registry)
