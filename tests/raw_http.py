"""An HTTP/1.1 client that behaves as a hostile (or merely impatient) client does.

It sends the body at its own pace while it reads the answer, stops sending once an answer
arrives, and reports how much of the body it got to send and whether the server closed
the connection afterwards. h11 does the framing (Content-Length or chunked, from the
headers given). httpx cannot do this: it sends the whole body before it reads a byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

MiB = 1024 * 1024


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got to send before it stopped
    elapsed_s: float  # from the first byte sent to the whole answer read
    closed: bool  # the server closed the connection after answering
    informational: list[int] = field(default_factory=list)  # e.g. [100] for 100 Continue


async def zeros(
    total: int, chunk: int = MiB, delay_s: float = 0.0, *, first_delay_s: float = 0.0
) -> AsyncIterator[bytes]:
    """`total` bytes in `chunk`-sized pieces, `delay_s` apart (a trickle, a stall...)."""
    if first_delay_s:
        await asyncio.sleep(first_delay_s)
    block = b"0" * chunk
    left = total
    while left > 0:
        piece = block if left >= chunk else block[:left]
        yield piece
        left -= len(piece)
        if delay_s:
            await asyncio.sleep(delay_s)


async def raw_request(
    url: str,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: AsyncIterator[bytes] | None = None,
    *,
    finish: bool = True,
    timeout_s: float = 60.0,
    close_wait_s: float = 5.0,
) -> RawResponse:
    """Send a request and read its answer; `finish=False` never ends the body (a client
    that stalls for good). Raises TimeoutError if no answer came within `timeout_s`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("host", f"{host}:{port}"), *headers]
    writer.write(conn.send(h11.Request(method=method, target=path, headers=all_headers)))
    await writer.drain()
    started = time.perf_counter()
    answered = asyncio.Event()
    sent = 0

    async def send_body() -> None:
        nonlocal sent
        if body is None:
            writer.write(conn.send(h11.EndOfMessage()))
            return
        async for chunk in body:
            if answered.is_set():
                return
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)  # drain() may not yield: let the reader see an answer
        if finish and not answered.is_set():
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        await asyncio.Event().wait()  # stay silent until cancelled

    sender = asyncio.create_task(send_body())
    status, informational = 0, []
    response_headers: dict[str, str] = {}
    received = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await reader.read(65536)
                    except ConnectionError:
                        data = b""
                    conn.receive_data(data)
                    if not data and status == 0:
                        raise ConnectionResetError("closed without an answer")
                    continue
                if isinstance(event, h11.InformationalResponse):
                    informational.append(event.status_code)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    response_headers = {k.decode(): v.decode() for k, v in event.headers}
                    answered.set()
                elif isinstance(event, h11.Data):
                    received += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        elapsed = time.perf_counter() - started
        closed = await _closed_within(reader, close_wait_s)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, h11.LocalProtocolError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return RawResponse(
        status, response_headers, bytes(received), sent, elapsed, closed, informational
    )


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True  # a reset is a close too
    return True
