"""`POST /v1/files`: spooled while the client sends, no database connection held, a bounded
number at once per key, and every malformed form a clear 400 (413/415), never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from gateway.db.url import libpq_url
from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import RunningGateway
from tests.rag.conftest import RagFactory

BOUNDARY = "gwtestboundary"


def form(*parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if end else b"")


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file_part(data: bytes, filename: str | None = "a.txt", name: str = "file") -> bytes:
    disposition = f'form-data; name="{name}"' + (
        f'; filename="{filename}"' if filename is not None else ""
    )
    return f"Content-Disposition: {disposition}\r\n\r\n".encode() + data


PURPOSE = field("purpose", b"assistants")
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

ONE = file_part(b"a")
FORMS: list[tuple[str, bytes]] = [
    ("garbage", b"this is not a multipart body"),
    ("wrong boundary", form(PURPOSE).replace(b"gwtest", b"other")),
    ("truncated", form(PURPOSE, file_part(b"abc" * 100), end=False)[:-40]),
    ("no closing boundary", form(PURPOSE, file_part(b"abc"), end=False)),
    ("missing file", form(PURPOSE)),
    ("two files", form(PURPOSE, ONE, file_part(b"b"))),
    ("file without a filename", form(PURPOSE, file_part(b"a", None))),
    ("bad purpose", form(field("purpose", b"nope"), ONE)),
    ("too many fields", form(*[field(f"f{i}", b"x") for i in range(17)], ONE)),
    ("fields too large", form(field("purpose", b"x" * 70_000), ONE)),
    ("huge part header", form(b"X-Junk: " + b"j" * 20_000 + b"\r\n" + ONE)),
    ("bad header line", form(b"not a header\r\n\r\nx")),
]
MALFORMED: list[tuple[str, dict[str, str], bytes, int]] = [
    *((case, {"content-type": MULTIPART}, body, 400) for case, body in FORMS),
    ("no boundary", {"content-type": "multipart/form-data"}, form(PURPOSE), 400),
    ("not multipart", {"content-type": "application/json"}, b'{"purpose": "x"}', 415),
]


def file_rows(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM files").fetchone()
    assert row is not None
    return int(row[0])


async def test_a_malformed_upload_is_a_clear_client_error(
    rag_gateway: RunningGateway, database_url: str
) -> None:
    async with rag_gateway.client(headers=admin_headers()) as client:
        for case, headers, body, status in MALFORMED:
            response = await client.post("/v1/files", content=body, headers=headers)
            assert response.status_code == status, (case, response.text)
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}, case
            assert error["message"], case
    assert file_rows(database_url) == 0


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    rag_gateway: RunningGateway,
) -> None:
    host, port = rag_gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
        f"Content-Type: {MULTIPART}\r\nContent-Length: {1 << 40}\r\n\r\n".encode()
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413") and b"GATEWAY_MAX_UPLOAD_BYTES" in answer


class StalledUpload:
    """An upload whose client sent its headers and some of the file, then went quiet."""

    def __init__(self, url: str, key: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.key = key
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None

    async def start(self, sent: int = 256 * 1024) -> StalledUpload:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = form(PURPOSE, file_part(b""), end=False)[: -len(b"\r\n")]
        self.writer.write(
            (
                "POST /v1/files HTTP/1.1\r\n"
                f"Host: {self.host}\r\nAuthorization: Bearer {self.key}\r\n"
                f"Content-Type: {MULTIPART}\r\nContent-Length: {100 << 20}\r\n\r\n"
            ).encode()
            + head
            + b"y" * sent
        )
        await self.writer.drain()
        return self

    async def answer(self) -> bytes:
        """What the gateway answered right away (a refusal), or b"" if it is waiting."""
        assert self.reader is not None
        try:
            return await asyncio.wait_for(self.reader.read(4096), 0.5)
        except TimeoutError:
            return b""

    async def leave(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()


@asynccontextmanager
async def stalled(url: str, key: str, count: int) -> AsyncIterator[list[StalledUpload]]:
    uploads = [await StalledUpload(url, key).start() for _ in range(count)]
    try:
        yield uploads
    finally:
        for upload in uploads:
            await upload.leave()


def spool_fds(directory: str) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(directory)
    return count


def checked_out(db: AsyncEngine) -> int:
    """Connections of `db`'s pool in use right now."""
    pool = db.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


async def test_stalled_uploads_hold_no_connection_and_leave_nothing(
    rag_factory: RagFactory, database_url: str, tmp_path: Path
) -> None:
    gw = await rag_factory(database_url, spool_dir=str(tmp_path), db_pool_size=2)
    key = (await create_key(gw)).secret
    assert gw.state.retrieval is not None and gw.storage.db is not None
    async with stalled(gw.url, key, 8) as uploads:
        for _ in range(200):  # all eight are being received
            if gw.state.retrieval.uploads.in_progress == 8 and spool_fds(str(tmp_path)) == 8:
                break
            await asyncio.sleep(0.02)
        assert [await u.answer() for u in uploads] == [b""] * 8  # all accepted, all waiting
        assert spool_fds(str(tmp_path)) == 8 and list(tmp_path.iterdir()) == []
        assert checked_out(gw.state.retrieval.db) == checked_out(gw.storage.db) == 0
        # Everything else goes on meanwhile.
        async with gw.client(headers={"authorization": f"Bearer {key}"}) as client:
            listed = await client.get("/v1/files")
            ready = await client.get("/readyz")
        assert listed.status_code == 200 and ready.status_code == 200
    for _ in range(100):  # the clients left: the gateway lets go of their spool files
        if spool_fds(str(tmp_path)) == 0:
            break
        await asyncio.sleep(0.05)
    assert spool_fds(str(tmp_path)) == 0
    assert file_rows(database_url) == 0
    assert gw.state.retrieval.uploads.in_progress == 0


async def test_uploads_per_key_are_limited_with_retry_after(
    rag_factory: RagFactory, database_url: str, sdk: Any
) -> None:
    gw = await rag_factory(database_url, max_uploads_per_key=3)
    greedy, other = (await create_key(gw, "greedy")).secret, (await create_key(gw, "other")).secret
    assert gw.state.retrieval is not None
    async with stalled(gw.url, greedy, 3):
        for _ in range(100):  # all three are being received
            if gw.state.retrieval.uploads.in_progress == 3:
                break
            await asyncio.sleep(0.02)
        async with gw.client(headers={"authorization": f"Bearer {greedy}"}) as client:
            refused = await client.post(
                "/v1/files", files={"file": ("x.txt", b"x")}, data={"purpose": "assistants"}
            )
        uploaded = await sdk(gw, api_key=other).files.create(
            file=("ok.txt", b"fine"), purpose="assistants"
        )
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "GATEWAY_MAX_UPLOADS_PER_KEY" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) > 0
    assert uploaded.bytes == 4
    for _ in range(100):  # the stalled ones are gone: the greedy key may upload again
        if gw.state.retrieval.uploads.in_progress == 0:
            break
        await asyncio.sleep(0.02)
    again = await sdk(gw, api_key=greedy).files.create(file=("x.txt", b"x"), purpose="assistants")
    assert again.bytes == 1
