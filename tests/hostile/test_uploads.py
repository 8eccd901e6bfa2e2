"""Hostile uploads against a real gateway process: stalled bodies, a greedy key, malformed
forms. None may take the database's connections, grow memory or get a 500; another key,
/readyz and usage recording go on as if nothing happened."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg

from gateway.db.url import libpq_url
from tests.admin import admin_headers, create_key
from tests.gateway_process import GatewayProcess
from tests.hostile.conftest import KeyedProcess

BOUNDARY = "hostileboundary"
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def database(database_url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, args).fetchall()


def gateway_connections(database_url: str) -> int:
    """Connections to the test's database other than the one asking."""
    [(count,)] = database(
        database_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )
    return int(count)


class Stalled:
    """An upload that sent its headers and the start of a file, then stopped sending."""

    def __init__(self, gw: GatewayProcess, key: str) -> None:
        self.address = gw.url.removeprefix("http://").split(":")
        self.key = key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Stalled:
        host, port = self.address
        self.reader, self.writer = await asyncio.open_connection(host, int(port))
        preamble = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
            f'assistants\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="slow.txt"\r\n\r\n'
        ).encode()
        self.writer.write(
            (
                f"POST /v1/files HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {self.key}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {200 << 20}\r\n\r\n"
            ).encode()
            + preamble
            + b"z" * (256 << 10)
        )
        await self.writer.drain()
        return self

    async def status(self) -> int | None:
        """The status the gateway answered with already, or None while it waits."""
        assert self.reader is not None
        try:
            head = await asyncio.wait_for(self.reader.read(4096), 0.3)
        except TimeoutError:
            return None
        return int(head.split(b" ", 2)[1]) if head else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def stalled(gw: GatewayProcess, key: str, count: int) -> AsyncIterator[list[Stalled]]:
    uploads: list[Stalled] = []
    try:
        for _ in range(count):
            uploads.append(await Stalled(gw, key).open())
        yield uploads
    finally:
        for upload in uploads:
            await upload.close()


async def test_forty_stalled_uploads_do_not_take_the_database(
    keyed_process: KeyedProcess, database_url: str
) -> None:
    # A pool of 3 (+3 overflow): before uploads were spooled, 6 stalled uploads took it all.
    gw = await keyed_process(
        GATEWAY_DB_POOL_SIZE="3",
        GATEWAY_MAX_UPLOADS_PER_KEY="40",
        GATEWAY_MAX_UPLOADS="40",
    )
    greedy = (await create_key(gw, "greedy")).secret
    newcomer = (await create_key(gw, "newcomer")).secret  # never used yet: not in the key cache
    baseline = gw.rss_bytes()
    idle = gateway_connections(database_url)  # the listener, pools' idle connections
    async with stalled(gw, greedy, 40) as uploads:
        await asyncio.sleep(1.0)
        statuses = await asyncio.gather(*(u.status() for u in uploads))
        assert statuses == [None] * 40  # all taken, all waiting
        connections = gateway_connections(database_url)
        async with gw.client(headers={"authorization": f"Bearer {newcomer}"}) as client:
            chat = await client.post("/v1/chat/completions", json=CHAT)
            files = await client.get("/v1/files")
            ready = await client.get("/readyz")
        grown = gw.rss_bytes() - baseline
        for _ in range(50):  # the newcomer's request is recorded as usual
            rows = database(database_url, "SELECT status FROM usage_events")
            if rows:
                break
            await asyncio.sleep(0.1)
    assert chat.status_code == 200 and files.status_code == 200
    assert ready.status_code == 200
    assert rows == [(200,)]
    assert connections <= idle + 1  # none per upload (a pool of 3 + 3 would be all taken)
    assert grown < 64 << 20  # 40 uploads in progress cost no more than a few MB
    assert database(database_url, "SELECT count(*) FROM files") == [(0,)]


async def test_a_greedy_key_gets_429_and_others_still_upload(
    keyed_process: KeyedProcess, database_url: str
) -> None:
    gw = await keyed_process()  # 8 uploads per key at once
    greedy, other = (await create_key(gw, "greedy")).secret, (await create_key(gw, "other")).secret
    async with stalled(gw, greedy, 12) as uploads:
        await asyncio.sleep(1.0)
        statuses = list(await asyncio.gather(*(u.status() for u in uploads)))
        async with gw.client(headers={"authorization": f"Bearer {greedy}"}) as client:
            refused = await client.post(
                "/v1/files", files={"file": ("a.txt", b"a")}, data={"purpose": "assistants"}
            )
        async with gw.client(headers={"authorization": f"Bearer {other}"}) as client:
            accepted = await client.post(
                "/v1/files", files={"file": ("b.txt", b"bb")}, data={"purpose": "assistants"}
            )
    # Requests reach the handler in whatever order their connections are read.
    assert statuses.count(None) == 8 and statuses.count(429) == 4
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert accepted.status_code == 200 and accepted.json()["bytes"] == 2


MALFORMED = [
    b"garbage",
    (  # cut short
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nab'
    ).encode(),
    f"--{BOUNDARY}\r\nbroken header\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
    f"--{BOUNDARY}--\r\n".encode(),  # no file at all
]


async def test_malformed_forms_are_400s_without_a_traceback(
    keyed_process: KeyedProcess,
) -> None:
    gw = await keyed_process()
    headers = {
        **admin_headers(),
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        answers = [
            await client.post("/v1/files", content=body, headers=headers) for body in MALFORMED
        ]
    assert [a.status_code for a in answers] == [400] * len(MALFORMED)
    assert all(set(a.json()["error"]) == {"message", "type", "param", "code"} for a in answers)
    assert "Traceback" not in gw.log()
