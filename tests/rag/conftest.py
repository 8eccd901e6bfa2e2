"""Real gateways with retrieval on embedded Postgres + pgvector and a fake embedding engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.rag.routes import router
from gateway.rag.worker import STATE_ATTR, IngestWorker
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine

ADMIN = "admin-secret-for-rag-tests"
EMBED_MODEL = "fake-embed"

RagFactory = Callable[..., Awaitable[RunningGateway]]


def _fastapi(app: Any) -> FastAPI:
    """The FastAPI app behind the pure-ASGI layers (CORS → context → fast path)."""
    node = app
    for _ in range(8):
        if isinstance(node, FastAPI):
            return node
        node = getattr(node, "fallback", None) or node.app
    raise AssertionError("no FastAPI app found")


def _wire(gw: RunningGateway) -> IngestWorker | None:
    """Until app.py wires retrieval itself: the routes, and a worker as its lifespan would."""
    api = _fastapi(gw.app)
    if not any(getattr(r, "path", "") == "/v1/files" for r in api.routes):
        api.include_router(router)
    if getattr(gw.app.state, STATE_ATTR, None) is not None or gw.services.db is None:
        return None
    worker = IngestWorker(gw.services, poll_s=0.2, lease_s=5.0)
    worker.start()
    setattr(gw.app.state, STATE_ATTR, worker)
    return worker


@pytest.fixture
async def chat_engine() -> AsyncIterator[FakeEngine]:
    engine = await FakeEngine().start()
    yield engine
    await engine.stop()


@pytest.fixture
async def embedder() -> AsyncIterator[FakeEmbedder]:
    fake = await FakeEmbedder(EMBED_MODEL).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def rag_factory(
    gateway_factory: GatewayFactory, embedder: FakeEmbedder
) -> AsyncIterator[RagFactory]:
    workers: list[IngestWorker] = []

    async def make(database_url: str | None = None, **overrides: Any) -> RunningGateway:
        settings: dict[str, Any] = {
            "upstreams": [embedder.url],
            "embedding_model": EMBED_MODEL,
            "admin_key": ADMIN,
            **overrides,
        }
        if database_url is not None:
            settings["database_url"] = database_url
        gw = await gateway_factory(**settings)
        worker = _wire(gw)
        if worker is not None:
            workers.append(worker)
        return gw

    yield make
    for worker in workers:
        await worker.stop()


@pytest.fixture
async def rag_gateway(rag_factory: RagFactory, database_url: str) -> RunningGateway:
    return await rag_factory(database_url)


async def stop_worker(gw: RunningGateway) -> None:
    worker = getattr(gw.app.state, STATE_ATTR, None)
    if isinstance(worker, IngestWorker):
        await worker.stop()


async def create_key(gw: RunningGateway, name: str = "test") -> str:
    async with gw.client(headers={"authorization": f"Bearer {ADMIN}"}) as client:
        response = await client.post("/admin/keys", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])
