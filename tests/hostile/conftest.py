"""The hostile-client suite's harness: real gateway processes (`tests/gateway_process.py`),
the session's real Postgres with pgvector, the real Redis on 127.0.0.1:6379 (db 11), and a
fake vLLM engine.

Every case asserts three things: the status the hostile (or clumsy) client gets; that the
gateway's memory stays bounded (its RSS from /proc, sampled while the case runs); and that
everyone else keeps being served meanwhile (a second key's chat completion through the
fake engine succeeds within a few seconds, and `/readyz` stays 200). `under_attack` does
all three around any attack coroutine:

    result = await under_attack(gw, attack(...), bystander, max_growth=50 * MiB)

What is here, for every file of the suite:
- `ThreadedEngine`, fixture `hostile_engine` (session): the fake engine in a thread and
  event loop of its own, so gateway processes shared by a module (or the session) can use
  it whatever event loop a test runs in.
- `hostile_database` (session): a fresh migrated database in the session's Postgres.
- `hostile_redis` (session): the Redis the suite's gateways share their limits through.
- `HostileGateway`, fixture `hostile_gateway` (session, shared by every file: do not break
  it on purpose): a gateway process with keys, Redis limits and short body timeouts
  (`FAST_PACE`), plus two ordinary keys, `attacker` and `bystander`. A case that needs
  other settings, or takes a part down, starts its own with `start_hostile_gateway(...)`.
- fixture `keyed_process`: a gateway process of the test's own (its database, the
  function-scoped fake engine it can reshape, and the fake embedder when asked), for cases
  that need settings or state of their own; `keyed_env(...)` is the environment both use.
- Keys: the admin secret and `create_key` come from `tests.admin`, as everywhere.
- `assert_served(...)`, `PeakRss`, `under_attack(...)`: the checks above.
- `raw_request` and `zeros` (from `tests.raw_http`): a client that sends a body at its own
  pace while it reads the answer, as a hostile client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis

from tests.admin import ADMIN_KEY, bearer, create_key
from tests.conftest import missing_prerequisite
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine
from tests.gateway_process import GatewayProcess, ProcessFactory, start_gateway_process
from tests.raw_http import MiB

REDIS_URL = "redis://127.0.0.1:6379/11"
CHAT = "/v1/chat/completions"
CHAT_BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
# Short body timeouts, so that slow-body cases end in seconds: a stall ends after 1 s of
# silence, a trickle after 2 s of waiting if it averaged under 1 KiB/s.
FAST_PACE = {
    "GATEWAY_BODY_IDLE_TIMEOUT_S": "1",
    "GATEWAY_BODY_RATE_GRACE_S": "2",
    "GATEWAY_BODY_MIN_BYTES_PER_S": "1024",
}
T = TypeVar("T")


class ThreadedEngine:
    """A `FakeEngine` served from its own thread and event loop."""

    def __init__(self) -> None:
        self.engine = FakeEngine()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.engine.url

    def start(self) -> ThreadedEngine:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.engine.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="session")
def hostile_engine() -> Iterator[ThreadedEngine]:
    engine = ThreadedEngine().start()
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def hostile_redis() -> Iterator[redis.Redis]:
    """A client of the suite's Redis (`REDIS_URL`), which the gateways are given."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        missing_prerequisite(f"no Redis at {REDIS_URL}: {exc!r}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def hostile_database(pg_server: Any) -> str:
    """A migrated database of the session's Postgres, for the shared gateway."""
    from sqlalchemy.engine import make_url

    name = f"gw_hostile_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE gw_template;")
    return make_url(pg_server.get_uri()).set(database=name).render_as_string(hide_password=False)


@dataclass
class HostileGateway:
    process: GatewayProcess
    attacker: str  # an ordinary API key, used by cases that need one
    bystander: str  # another key, whose requests must keep being served

    @property
    def url(self) -> str:
        return self.process.url

    def rss_bytes(self) -> int:
        return self.process.rss_bytes()

    def log(self) -> str:
        return self.process.log()


def keyed_env(
    engine_url: str, database_url: str, embedder: FakeEmbedder | None = None
) -> dict[str, str]:
    """A gateway with keys (the admin secret is `tests.admin.ADMIN_KEY`) on `database_url`
    in front of `engine_url` (and `embedder`, which turns retrieval's ingestion on), with
    usage and ingestion polled every 0.2 s."""
    upstreams = [engine_url] if embedder is None else [engine_url, embedder.url]
    base = {
        "GATEWAY_UPSTREAMS": ",".join(upstreams),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ADMIN_KEY": ADMIN_KEY,
        "GATEWAY_USAGE_FLUSH_INTERVAL_S": "0.2",
    }
    if embedder is not None:
        base |= {"GATEWAY_EMBEDDING_MODEL": embedder.model, "GATEWAY_INGEST_POLL_S": "0.2"}
    return base


KeyedProcess = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
def keyed_process(
    gateway_process: ProcessFactory, engine: FakeEngine, database_url: str
) -> KeyedProcess:
    """`await keyed_process(embedder=None, **env)`: this test's own gateway process
    (`keyed_env` with this test's fake engine and database), ready on `/readyz`, stopped at
    teardown."""

    async def start(embedder: FakeEmbedder | None = None, **env: str) -> GatewayProcess:
        return await gateway_process(
            keyed_env(engine.url, database_url, embedder) | env, ready_path="/readyz"
        )

    return start


async def start_hostile_gateway(
    engine_url: str, database_url: str, log_dir: Path, **env: str
) -> HostileGateway:
    """A gateway process (`keyed_env`, and `env` on top) ready on `/readyz`, with two
    ordinary keys."""
    process = await start_gateway_process(
        keyed_env(engine_url, database_url) | env, log_dir, ready_path="/readyz"
    )
    attacker = await create_key(process, "attacker")
    bystander = await create_key(process, "bystander")
    gateway = HostileGateway(process, attacker.secret, bystander.secret)
    await assert_served(gateway)  # warm: the bystander's key is now cached
    return gateway


@pytest.fixture(scope="session")
def hostile_gateway(
    hostile_engine: ThreadedEngine,
    hostile_database: str,
    hostile_redis: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostileGateway]:
    """One gateway process for the suite's cases: keys, Redis limits, `FAST_PACE`."""
    log_dir = tmp_path_factory.mktemp("hostile")
    gateway = asyncio.run(
        start_hostile_gateway(
            hostile_engine.url,
            hostile_database,
            log_dir,
            GATEWAY_REDIS_URL=REDIS_URL,
            **FAST_PACE,
        )
    )
    yield gateway
    asyncio.run(gateway.process.stop())


async def assert_served(
    gateway: HostileGateway, key: str | None = None, *, within_s: float = 5.0, ready: bool = True
) -> None:
    """A chat completion with `key` (the bystander's) succeeds within `within_s`, and
    `/readyz` answers 200 (unless `ready=False`: a case that takes a part down on purpose)."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=within_s) as client:
        reply = await client.post(CHAT, json=CHAT_BODY, headers=bearer(key or gateway.bystander))
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        if ready:
            readiness = await client.get("/readyz")
            assert readiness.status_code == 200, readiness.text
    took = time.monotonic() - started
    assert took < within_s, f"the bystander waited {took:.1f} s"


class PeakRss:
    """The gateway's RSS before and at its highest while the block runs (sampled every
    10 ms from /proc): `growth` is what a case cost the process in memory."""

    def __init__(self, gateway: HostileGateway) -> None:
        self.gateway = gateway
        self.before = 0
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.before)

    async def __aenter__(self) -> PeakRss:
        self.before = self.peak = self.gateway.rss_bytes()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, self.gateway.rss_bytes())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.gateway.rss_bytes())
            await asyncio.sleep(0.01)


async def under_attack(
    gateway: HostileGateway,
    attack: Awaitable[T],
    *,
    max_growth: int = 50 * MiB,
    within_s: float = 5.0,
    ready: bool = True,
    start_after_s: float = 0.0,
) -> T:
    """Run `attack` and, for as long as it runs (at least once), check that the bystander
    is served (`assert_served`); then that the gateway grew by less than `max_growth`."""
    async with PeakRss(gateway) as rss:
        task: asyncio.Task[T] = asyncio.ensure_future(attack)
        if start_after_s:
            await asyncio.sleep(start_after_s)  # let a slow attack take hold first
        checks = 0
        while not task.done() or checks == 0:
            await assert_served(gateway, within_s=within_s, ready=ready)
            checks += 1
            await asyncio.sleep(0.05)
        result = await task
    assert rss.growth < max_growth, f"the gateway grew by {rss.growth / MiB:.0f} MiB"
    return result
