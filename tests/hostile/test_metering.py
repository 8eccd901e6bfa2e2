"""Hostile clients cannot dodge metering (issue 11, item 5), against a real `gateway serve`
process, the embedded Postgres, the real Redis and the fake engine.

Each case has one greedy key doing the hostile thing and another key that must be served
normally meanwhile.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
import pytest
import redis

from gateway.admission.cost import prompt_estimate
from gateway.db.url import libpq_url
from tests.admin import admin_headers, create_key
from tests.fakes.engine import FakeEngine
from tests.gateway_process import GatewayProcess
from tests.hostile.conftest import REDIS_URL, KeyedProcess
from tests.raw_http import MiB

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
QUESTION = {"model": "fake-model", "messages": [{"role": "user", "content": "hello " * 40}]}


@dataclass
class Metered:
    """A gateway process with keys, usage in Postgres and limits in Redis."""

    gw: GatewayProcess
    database_url: str
    key_ids: list[str] = field(default_factory=list)

    async def key(self, **limits: Any) -> dict[str, str]:
        created = await create_key(self.gw, "hostile", **limits)
        self.key_ids.append(created.id)  # its limiter state is removed at teardown
        return created.headers

    def rows(self) -> list[dict[str, Any]]:
        with psycopg.connect(libpq_url(self.database_url)) as conn:
            cursor = conn.execute(
                "SELECT key_id, status, prompt_tokens, completion_tokens, streamed, cancelled "
                "FROM usage_events ORDER BY id"
            )
            names = [c.name for c in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def wait_rows(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(rows := self.rows()) < n:
            assert time.monotonic() < deadline, f"{len(rows)} usage rows, expected {n}"
            await asyncio.sleep(0.1)
        return rows

    async def served_normally(self, headers: dict[str, str]) -> None:
        """The other key: an ordinary request, answered in full and quickly."""
        started = time.monotonic()
        async with self.gw.client(headers=headers) as client:
            response = await client.post(CHAT, json={**QUESTION, "max_tokens": 5})
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] > 0
        assert time.monotonic() - started < 2


@pytest.fixture
async def metered(
    database_url: str, keyed_process: KeyedProcess, hostile_redis: redis.Redis
) -> AsyncIterator[Callable[..., Awaitable[Metered]]]:
    started: list[Metered] = []

    async def start(**env: str) -> Metered:
        gw = await keyed_process(GATEWAY_REDIS_URL=REDIS_URL, **env)
        started.append(Metered(gw, database_url))
        return started[-1]

    yield start
    for harness in started:  # this test's limiter state only
        for key_id in harness.key_ids:
            for name in hostile_redis.scan_iter(match=f"gw:rl:{{{key_id}}}:*"):
                hostile_redis.delete(name)


@dataclass
class RawStream:
    """A stream held open on a bare socket, so many can be dropped at the same instant."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: bytes = b""

    @property
    def events(self) -> int:
        return self.received.count(b"data: ")

    async def read_events(self, n: int) -> None:
        while self.events < n:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            assert data, f"stream ended after {self.events} events: {self.received[-300:]!r}"
            self.received += data

    async def read_to_end(self) -> None:
        while data := await asyncio.wait_for(self.reader.read(65536), 10):
            self.received += data

    def drop(self) -> None:
        self.writer.transport.abort()


async def open_stream(url: str, path: str, body: bytes, headers: dict[str, str]) -> RawStream:
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    lines = [
        f"POST {path} HTTP/1.1",
        f"host: {where.netloc}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
    stream = RawStream(reader, writer)
    await stream.read_events(1)
    assert stream.received.startswith(b"HTTP/1.1 200"), stream.received[:300]
    return stream


def stream_body(**fields: Any) -> bytes:
    return orjson.dumps({**QUESTION, "stream": True, **fields})


def slow_engine(engine: FakeEngine, chunks: int = 400, delay: float = 0.05) -> None:
    engine.behaviour.chunks = chunks
    engine.behaviour.chunk_delay = delay


async def test_n_above_the_cap_is_refused_before_the_engine(
    engine: FakeEngine, metered: Callable[..., Awaitable[Metered]]
) -> None:
    harness = await metered(GATEWAY_MAX_N="4")
    greedy, other = await harness.key(), await harness.key()
    async with harness.gw.client(headers=greedy) as client:
        chat = await client.post(CHAT, json={**QUESTION, "n": 5, "stream": True})
        completions = await client.post(
            COMPLETIONS, json={"model": "fake-model", "prompt": "x", "n": 10_000}
        )
    for response in (chat, completions):
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["type"]) == ("n", "invalid_request_error")
        assert "from 1 to 4" in error["message"]
    assert engine.seen.bodies == []
    await harness.served_normally(other)


async def test_answers_times_prompts_are_reserved_against_tpm(
    engine: FakeEngine, metered: Callable[..., Awaitable[Metered]]
) -> None:
    harness = await metered()
    greedy, other = await harness.key(tpm=1000), await harness.key()
    slow_engine(engine)
    # 4 prompts x n=2 x 100 tokens: 800 answer tokens. Counted once, as before, two such
    # requests (100 each plus their prompts) would fit in 1000 side by side.
    body = orjson.dumps(
        {"model": "fake-model", "prompt": ["a", "b", "c", "d"], "n": 2, "max_tokens": 100}
    )
    stream = await open_stream(harness.gw.url, COMPLETIONS, body[:-1] + b',"stream":true}', greedy)
    try:
        async with harness.gw.client(headers=greedy) as client:
            refused = await client.post(COMPLETIONS, content=body)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert f"requested {prompt_estimate(body) + 800}." in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-limit-tokens"] == "1000"
        await harness.served_normally(other)
    finally:
        stream.drop()


async def test_dropping_many_streams_at_once_still_meters_them(
    engine: FakeEngine, metered: Callable[..., Awaitable[Metered]]
) -> None:
    harness = await metered()
    greedy, other = await harness.key(tpm=10_000_000), await harness.key()
    slow_engine(engine)
    body = stream_body()
    n = 40
    streams = [await open_stream(harness.gw.url, CHAT, body, greedy) for _ in range(3)]
    rss_before = harness.gw.rss_bytes()
    streams += await asyncio.gather(
        *(open_stream(harness.gw.url, CHAT, body, greedy) for _ in range(n - 3))
    )
    await asyncio.gather(*(s.read_events(3) for s in streams))
    await harness.served_normally(other)
    for stream in streams:  # all in one loop turn: no event in between
        stream.drop()
    rows = await harness.wait_rows(n + 1)
    cut = [r for r in rows if r["cancelled"]]
    assert len(cut) == n
    # No usage chunk ever came: each pays the prompt's estimate (not 0) and the tokens
    # relayed to it before it left.
    assert {r["prompt_tokens"] for r in cut} == {prompt_estimate(body)}
    assert all(3 <= r["completion_tokens"] < 400 for r in cut)
    assert all(r["status"] == 200 and r["streamed"] for r in cut)
    for _ in range(50):  # the engine was told to stop generating for each of them
        if len(engine.seen.aborted) >= n:
            break
        await asyncio.sleep(0.1)
    assert len(engine.seen.aborted) == n
    # The metrics count the same tokens as the usage rows: one answer per request.
    async with harness.gw.client(headers=admin_headers()) as client:
        metrics = (await client.get("/metrics")).text
    counted = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("gateway_tokens_total{")
    )
    assert counted == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert harness.gw.rss_bytes() - rss_before < 30 * MiB
    await harness.served_normally(other)


async def test_sigterm_with_requests_running_records_them_as_cancelled(
    engine: FakeEngine, metered: Callable[..., Awaitable[Metered]], hostile_redis: redis.Redis
) -> None:
    harness = await metered(
        GATEWAY_SHUTDOWN_TIMEOUT_S="1",
        # Only the final flush at shutdown can have written the events.
        GATEWAY_USAGE_FLUSH_INTERVAL_S="300",
    )
    greedy, other = await harness.key(max_parallel=10), await harness.key()
    slow_engine(engine, chunks=2000)
    body = stream_body()
    streams = [await open_stream(harness.gw.url, CHAT, body, greedy) for _ in range(3)]
    await asyncio.gather(*(s.read_events(4) for s in streams))
    await harness.served_normally(other)
    engine.behaviour.first_delay = 5  # from now on the engine thinks longer than the grace
    plain = orjson.dumps({**QUESTION, "max_tokens": 50})
    async with httpx.AsyncClient(base_url=harness.gw.url, headers=greedy, timeout=30) as client:
        waiting = asyncio.create_task(client.post(CHAT, content=plain))
        await asyncio.sleep(0.5)
        stopped_at = time.monotonic()
        code = await harness.gw.stop(signal.SIGTERM)
        unanswered = await waiting
    assert code in (0, -signal.SIGTERM)
    assert time.monotonic() - stopped_at < 10  # 1 s of grace, then the flush
    # The clients learn why, in a form the SDKs raise on (and retry, for the 503).
    assert unanswered.status_code == 503
    assert unanswered.json()["error"]["code"] == "server_shutting_down"
    await asyncio.gather(*(s.read_to_end() for s in streams))
    assert all(b'"server_shutting_down"' in s.received for s in streams)
    rows = harness.rows()
    cut = [r for r in rows if r["cancelled"]]
    assert len(rows) == 5 and len(cut) == 4
    assert {r["status"] for r in cut} == {503}
    streamed = [r for r in cut if r["streamed"]]
    assert {r["prompt_tokens"] for r in streamed} == {prompt_estimate(body)}
    assert all(r["completion_tokens"] >= 4 for r in streamed)
    # The engine may have written the unanswered one whole: it pays its reservation.
    [held] = [r for r in cut if not r["streamed"]]
    assert (held["prompt_tokens"], held["completion_tokens"]) == (prompt_estimate(plain), 50)
    # Their slots were given back on the way out, not left to expire in Redis.
    assert hostile_redis.zcard(f"gw:rl:{{{held['key_id']}}}:s") == 0


async def test_a_stream_longer_than_the_slot_lease_keeps_its_slot(
    engine: FakeEngine, metered: Callable[..., Awaitable[Metered]]
) -> None:
    harness = await metered(GATEWAY_SLOT_LEASE_S="1")
    greedy, other = await harness.key(max_parallel=1), await harness.key()
    slow_engine(engine)
    stream = await open_stream(harness.gw.url, CHAT, stream_body(), greedy)
    try:
        await asyncio.sleep(2.5)  # two and a half leases: renewed, not expired
        await stream.read_events(10)
        async with harness.gw.client(headers=greedy) as client:
            sneaking = await client.post(CHAT, json=QUESTION)
        assert sneaking.status_code == 429
        assert "parallel" in sneaking.json()["error"]["message"]
        await harness.served_normally(other)
    finally:
        stream.drop()
    async with harness.gw.client(headers=greedy) as client:
        for _ in range(20):  # the slot is given back as soon as the gateway sees it go
            after = await client.post(CHAT, json={**QUESTION, "stream": False})
            if after.status_code == 200:
                break
            await asyncio.sleep(0.05)
    assert after.status_code == 200
