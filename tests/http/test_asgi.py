"""The pure-ASGI helpers every fast route is written with: headers, bodies, answers."""

from __future__ import annotations

import pytest

from gateway.http.asgi import ClientGone, header, read_body, send_bytes
from tests.http.exchange import Exchange, body_messages, http_scope


def test_header_is_the_first_value_and_none_when_absent() -> None:
    scope = http_scope(headers=[("X-Api-Key", "first"), ("x-api-key", "second")])
    assert header(scope, b"x-api-key") == b"first"
    assert header(scope, b"authorization") is None


async def test_a_body_in_chunks_is_read_whole() -> None:
    exchange = Exchange(body_messages(b'{"model":', b' "m"', b"}"))
    assert await read_body(exchange.receive) == b'{"model": "m"}'


async def test_no_body_is_empty_bytes() -> None:
    assert await read_body(Exchange(body_messages()).receive) == b""


async def test_a_client_leaving_mid_body_is_client_gone() -> None:
    exchange = Exchange(body_messages(b"part", b"more")[:1])
    exchange.disconnect()
    with pytest.raises(ClientGone):
        await read_body(exchange.receive)


async def test_send_bytes_declares_type_and_length_and_adds_headers() -> None:
    exchange = Exchange()
    body = '{"ok": "é"}'.encode()
    await send_bytes(exchange.send, 201, body, headers=[(b"x-request-id", b"r1")])
    assert exchange.status == 201 and exchange.body == body
    assert exchange.headers == {
        "content-type": "application/json",
        "content-length": str(len(body)),  # bytes, not characters
        "x-request-id": "r1",
    }
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert exchange.sent[-1].get("more_body", False) is False  # the answer is complete


async def test_send_bytes_with_another_content_type() -> None:
    exchange = Exchange()
    await send_bytes(exchange.send, 200, b"<p>hi</p>", content_type=b"text/html")
    assert exchange.headers["content-type"] == "text/html"
