"""The HTTP/1.1 connection under `gateway serve`: uvicorn's httptools protocol with a cap on
a request's head (request line and headers) and a deadline for it.

uvicorn with httptools buffers a head without limit and waits for it without a deadline:
measured here, one 100 MiB header grew the gateway by 182 MiB, and a connection that sends
nothing, or a header byte now and then, stays open for good. The body limit
(`gateway.http.body_limit`) only starts once a head is complete. As nginx
(`large_client_header_buffers`, `client_header_timeout`) and Node (`maxHeaderSize`,
`headersTimeout`) do, a head still incomplete after `max_head_bytes` is answered 431 and
the connection closed (so at most that plus one read is ever buffered), and a connection
whose head is not complete `head_timeout_s` after it opened (or after the request began)
is closed.

Only a head that does not arrive in one read starts a timer: the hot path (a whole request
in one packet) pays an attribute check per read.
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import error_body

_TOO_LARGE = "The request's line and headers are larger than the gateway's limit of {limit} bytes."


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024
    head_timeout_s = 30.0

    _in_head = True  # a connection starts with a request's head
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
            elif self._head_timer is None:
                self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        message = _TOO_LARGE.format(limit=self.max_head_bytes)
        body = orjson.dumps(
            error_body(message, "invalid_request_error", None, "request_header_fields_too_large")
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"x-should-retry: false\r\n"
            b"connection: close\r\n\r\n"
        )
        self._disarm()
        self.transport.write(head + body)
        self.transport.close()
