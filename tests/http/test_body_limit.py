"""The body limit on a real uvicorn (httptools, as `gateway serve` runs it) in front of a
tiny handler that records what it was given: caps, the 408 rules, the refusal's shape and
the connection closing after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest
import uvicorn

from gateway.errors import GatewayError
from gateway.http.asgi import Receive, Scope, Send, send_bytes
from gateway.http.body_limit import BodyClass, BodyClasses, BodyLimit
from gateway.http.body_pace import Pace
from gateway.http.errors import send_error
from gateway.ui.refusal import render_refusal
from tests.conftest import QuietServer
from tests.fakes.engine import free_port
from tests.raw_http import raw_request, zeros

CLASSES = BodyClasses(
    proxy=BodyClass(1000, "GATEWAY_MAX_BODY_BYTES"),
    upload=BodyClass(5000, "GATEWAY_MAX_UPLOAD_BYTES"),
    admin=BodyClass(100, "GATEWAY_MAX_ADMIN_BODY_BYTES"),
    console=BodyClass(200, "the console's form limit", render_refusal),
    console_upload=BodyClass(5000, "GATEWAY_MAX_UPLOAD_BYTES", render_refusal),
    other=BodyClass(50, "the limit for this route"),
)
# Short enough for a test: stalls end after 0.4 s, trickles after 1 s under 1000 B/s.
PACE = Pace(idle_timeout_s=0.4, min_bytes_per_s=1000, grace_s=1.0)
JSON = [("content-type", "application/json")]


class Handler:
    """Reads the body as a route would, answers with its size; on an error from `receive`,
    answers it (as the proxy route does): the body limit must replace that answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen = 0  # body bytes the last request's handler was given
        self.after_body_s = 0.0  # wait for the disconnect this long after the body
        self.refuse_unread = False  # answer 401 without reading the body (a stranger's)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.seen = 0
        if self.refuse_unread:
            await send_bytes(send, 401, b'{"error": {}}')
            return
        try:
            while True:
                message = await receive()
                self.seen += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except GatewayError as exc:
            await send_error(send, exc)
            return
        if self.after_body_s:
            # A stream's disconnect watcher: waiting on receive() once the body is in
            # must never count as a slow body.
            try:
                async with asyncio.timeout(self.after_body_s):
                    await receive()
            except TimeoutError:
                pass
        await send_bytes(send, 200, orjson.dumps({"size": self.seen}))


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    port = free_port()
    app = BodyLimit(handler, CLASSES, PACE)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def handler() -> Handler:
    return Handler()


def error_of(body: bytes) -> dict[str, object]:
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error  # type: ignore[no-any-return]


async def test_content_length_over_the_cap_is_refused_before_the_body_is_read(
    handler: Handler,
) -> None:
    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/chat/completions",
            [*JSON, ("content-length", str(100_000))],
            zeros(100_000, chunk=1000, delay_s=0.01),
        )
    assert answer.status == 413
    error = error_of(answer.body)
    assert error["code"] == "request_too_large"
    assert "GATEWAY_MAX_BODY_BYTES" in str(error["message"])
    assert answer.headers["x-should-retry"] == "false"
    assert answer.headers["connection"] == "close" and answer.closed
    assert handler.calls == 0  # nothing behind the limit ran
    assert answer.sent < 100_000  # answered while the client was still sending


async def test_a_chunked_body_is_cut_at_the_cap_and_the_handler_sees_no_more(
    handler: Handler,
) -> None:
    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/admin/keys",
            [*JSON, ("transfer-encoding", "chunked")],
            zeros(10_000, chunk=30, delay_s=0.002),
        )
    assert answer.status == 413  # replaced the handler's own answer
    assert "GATEWAY_MAX_ADMIN_BODY_BYTES" in str(error_of(answer.body)["message"])
    assert handler.calls == 1 and handler.seen <= 100
    assert answer.closed


async def test_bodies_within_their_cap_pass_untouched(handler: Handler) -> None:
    async with serving(handler) as url, httpx.AsyncClient(base_url=url) as client:
        exact = await client.post("/v1/chat/completions", content=b"x" * 1000)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 100

        chunked = await client.post("/v1/chat/completions", content=chunks())
        empty = await client.get("/v1/models")
    assert [r.status_code for r in (exact, chunked, empty)] == [200, 200, 200]
    assert exact.json() == {"size": 1000} and chunked.json() == {"size": 1000}
    assert "connection" not in exact.headers  # keep-alive as usual


async def test_an_answer_given_before_the_body_was_read_ends_the_connection(
    handler: Handler,
) -> None:
    handler.refuse_unread = True
    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/chat/completions",
            [*JSON, ("transfer-encoding", "chunked")],
            zeros(100_000_000, chunk=10_000, delay_s=0.01),  # on and on, if allowed
        )

        async def sdk_body() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"z" * 1024 * 1024

        async with httpx.AsyncClient(base_url=url) as client:
            sdk = await client.post("/v1/chat/completions", content=sdk_body())
            small = await client.post("/v1/chat/completions", content=b"{}")
    assert answer.status == 401 and answer.headers["connection"] == "close" and answer.closed
    assert answer.sent < 10_000_000
    assert sdk.status_code == 401  # read, not a reset: the rest was drained first
    assert small.status_code == 401


async def test_an_early_answer_never_invites_a_body_the_client_held_back(handler: Handler) -> None:
    handler.refuse_unread = True

    async def body_after_the_answer() -> AsyncIterator[bytes]:
        await asyncio.sleep(3600)
        yield b""

    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/chat/completions",
            [*JSON, ("content-length", "500"), ("expect", "100-continue")],
            body_after_the_answer(),
        )
    assert answer.status == 401 and answer.informational == [] and answer.closed
    assert answer.elapsed_s < 1.0  # no drain: nothing was coming


async def test_an_sdk_style_client_reads_the_413_instead_of_a_reset(handler: Handler) -> None:
    # httpx (the openai SDK's transport) writes the whole body before it reads: without the
    # short drain, closing on unread data resets the connection and it never sees the 413.
    async with serving(handler) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/v1/chat/completions", content=b"z" * (20 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_a_client_waiting_for_100_continue_is_refused_without_an_invitation(
    handler: Handler,
) -> None:
    async def body_after_the_answer() -> AsyncIterator[bytes]:
        await asyncio.sleep(3600)  # curl's behaviour: send only once told to
        yield b""

    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/embeddings",
            [*JSON, ("content-length", "5000"), ("expect", "100-continue")],
            body_after_the_answer(),
        )
    assert answer.status == 413 and answer.informational == [] and answer.sent == 0
    assert answer.closed


async def test_a_stalled_body_is_cut_off_with_408(handler: Handler) -> None:
    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/chat/completions",
            [*JSON, ("content-length", "500")],
            zeros(100, chunk=100),
            finish=False,  # then nothing, for good
        )
    assert answer.status == 408
    error = error_of(answer.body)
    assert error["code"] == "request_timeout" and "no data arrived" in str(error["message"])
    assert "x-should-retry" not in answer.headers  # the SDKs retry a 408
    assert 0.4 <= answer.elapsed_s < 2.0
    assert answer.closed and handler.seen == 100


async def test_a_trickle_under_the_idle_timeout_is_cut_by_the_rate_rule(handler: Handler) -> None:
    async with serving(handler) as url:
        answer = await raw_request(
            url,
            "POST",
            "/v1/chat/completions",
            [*JSON, ("content-length", "900")],
            zeros(900, chunk=10, delay_s=0.2),  # 50 B/s, each gap well under 0.4 s
        )
    assert answer.status == 408
    assert "bytes per second" in str(error_of(answer.body)["message"])
    assert 1.0 <= answer.elapsed_s < 3.0


async def test_waiting_for_the_disconnect_after_the_body_is_never_a_timeout(
    handler: Handler,
) -> None:
    handler.after_body_s = 1.5  # far past the idle timeout, as a long stream would be
    async with serving(handler) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/v1/chat/completions", content=b"x" * 10)
    assert response.status_code == 200 and response.json() == {"size": 10}


async def test_the_console_gets_its_own_page(handler: Handler) -> None:
    form = [("content-type", "application/x-www-form-urlencoded")]
    async with serving(handler) as url:
        page = await raw_request(
            url, "POST", "/ui/login", [*form, ("content-length", "5000")], zeros(5000)
        )
        fragment = await raw_request(
            url,
            "POST",
            "/ui/keys",
            [*form, ("content-length", "5000"), ("hx-request", "true")],
            zeros(5000),
        )
    assert page.status == 413 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.body.decode()
    assert "<html" in html and "the console&#39;s form limit" in html
    assert fragment.status == 413 and fragment.body.startswith(b"<p role='alert'>")


@pytest.mark.parametrize(
    ("method", "path", "content_type", "expected"),
    [
        ("POST", "/v1/chat/completions", "application/json", "proxy"),
        ("POST", "/v1/vector_stores/vs_1/search", "application/json", "proxy"),
        ("POST", "/v1/files", "multipart/form-data; boundary=x", "upload"),
        ("POST", "/v1/files/", "Multipart/Form-Data; boundary=x", "upload"),
        ("POST", "/v1/files", "application/json", "proxy"),
        ("POST", "/admin/keys", "application/json", "admin"),
        ("POST", "/ui/login", "application/x-www-form-urlencoded", "console"),
        ("POST", "/ui/stores/vs_1/files", "multipart/form-data; boundary=x", "console_upload"),
        ("POST", "/ui/stores/vs_1/files", "application/x-www-form-urlencoded", "console"),
        ("POST", "/readyz", "application/json", "other"),
        ("POST", "/v1", "application/json", "other"),
    ],
)
def test_routes_are_classed_by_path_and_multipart(
    method: str, path: str, content_type: str, expected: str
) -> None:
    scope = {"method": method, "path": path, "headers": [(b"content-type", content_type.encode())]}
    assert CLASSES.classify(scope) is getattr(CLASSES, expected)
