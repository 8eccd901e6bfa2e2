"""Shared fixtures: fake engines and a real gateway (uvicorn on loopback) in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import anthropic
import httpx
import pytest
import uvicorn
from openai import AsyncOpenAI

from gateway.app import GatewayApp, create_app
from gateway.config import Settings
from gateway.rag.resources import Retrieval
from gateway.state import AppState, Storage
from tests.admin import ADMIN_KEY
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine, free_port
from tests.postgres import new_server

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

pytest_plugins = ["tests.gateway_process", "tests.deploy.harness"]


@pytest.fixture
async def embedder() -> AsyncIterator[FakeEmbedder]:
    """A fake embedding engine (for retrieval without a real model)."""
    fake = await FakeEmbedder().start()
    yield fake
    await fake.stop()


def missing_prerequisite(why: str) -> NoReturn:
    """A developer without a test's prerequisite (Redis, a browser) skips the test; CI
    (CI=true) installs them all, so there it fails rather than pass off a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {why}")
    pytest.skip(why)


class QuietServer(uvicorn.Server):
    """uvicorn in the test's own event loop, leaving the process's signals (Ctrl-C) to
    pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningGateway:
    url: str
    app: GatewayApp
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def state(self) -> AppState:
        """What the gateway's lifespan built (settings, engines, storage, retrieval)."""
        return self.app.state

    @property
    def storage(self) -> Storage:
        found = self.state.storage
        assert found is not None, "this gateway runs without a database"
        return found

    @property
    def retrieval(self) -> Retrieval:
        found = self.state.retrieval
        assert found is not None, "this gateway runs without a database"
        return found

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, **{"timeout": 10, **kwargs})


async def start_gateway(**overrides: Any) -> RunningGateway:
    port = free_port()
    settings = Settings(
        **{"port": port, "health_interval_s": 0.2, "log_format": "console", **overrides}
    )
    app = create_app(settings)
    assert isinstance(app, GatewayApp)  # its state is what the tests look into
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return RunningGateway(f"http://127.0.0.1:{port}", app, server, task)


async def stop_gateway(gateway: RunningGateway) -> None:
    gateway.server.should_exit = True
    await gateway.task


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = await FakeEngine().start()
    yield fake
    await fake.stop()


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def gateway_factory() -> AsyncIterator[GatewayFactory]:
    started: list[RunningGateway] = []

    async def make(**overrides: Any) -> RunningGateway:
        gw = await start_gateway(**overrides)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await stop_gateway(gw)


class SdkFactory(Protocol):
    """The `sdk` fixture: `sdk(gateway, api_key=...)`."""

    def __call__(self, gw: RunningGateway, api_key: str = "unused") -> AsyncOpenAI: ...


@pytest.fixture
async def sdk() -> AsyncIterator[SdkFactory]:
    """openai SDK clients pointed at a gateway, closed at teardown."""
    clients: list[AsyncOpenAI] = []

    def make(gw: RunningGateway, api_key: str = "unused") -> AsyncOpenAI:
        client = AsyncOpenAI(base_url=gw.url + "/v1", api_key=api_key, max_retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


Client = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture
async def claude() -> AsyncIterator[Client]:
    """anthropic SDK clients pointed at a gateway (the SDK adds /v1/messages itself)."""
    clients: list[anthropic.AsyncAnthropic] = []

    def make(gw: RunningGateway, api_key: str | None = "unused", **kwargs: Any) -> Any:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=api_key, max_retries=0, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def gateway(engine: FakeEngine, gateway_factory: GatewayFactory) -> RunningGateway:
    return await gateway_factory(upstreams=[engine.url])


@pytest.fixture
def keyed_factory(
    engine: FakeEngine, database_url: str, gateway_factory: GatewayFactory
) -> GatewayFactory:
    """Gateways with keys in front of the fake engine: this test's database and the admin
    secret `tests.admin.ADMIN_KEY` (make keys with `tests.admin.create_key`); keyword
    arguments override settings."""

    async def make(**overrides: Any) -> RunningGateway:
        settings = {
            "upstreams": [engine.url],
            "database_url": database_url,
            "admin_key": ADMIN_KEY,
            **overrides,
        }
        return await gateway_factory(**settings)

    return make


# -- Postgres: one embedded server per session, a fresh migrated database per test --------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    from gateway.db.migrate import upgrade

    server = new_server()
    # Migrate once into a template; each test's database is a cheap copy of it.
    server.psql("CREATE DATABASE gw_template;")
    upgrade(_with_db(server.get_uri(), "gw_template"))
    yield server
    server.cleanup()


def _with_db(uri: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(uri).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def database_url(pg_server: PostgresServer) -> str:
    name = f"gw_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE gw_template;")
    return _with_db(pg_server.get_uri(), name)
