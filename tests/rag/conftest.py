"""Real gateways with retrieval on embedded Postgres + pgvector and a fake embedding engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine

ADMIN = "admin-secret-for-rag-tests"

RagFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def chat_engine() -> AsyncIterator[FakeEngine]:
    engine = await FakeEngine().start()
    yield engine
    await engine.stop()


@pytest.fixture
def rag_factory(gateway_factory: GatewayFactory, embedder: FakeEmbedder) -> RagFactory:
    """Gateways whose lifespan runs retrieval (routes and ingestion worker) on Postgres."""

    async def make(database_url: str | None = None, **overrides: Any) -> RunningGateway:
        settings: dict[str, Any] = {
            "upstreams": [embedder.url],
            "embedding_model": embedder.model,
            "admin_key": ADMIN,
            "ingest_poll_s": 0.2,
            **overrides,
        }
        if database_url is not None:
            settings["database_url"] = database_url
        return await gateway_factory(**settings)

    return make


@pytest.fixture
async def rag_gateway(rag_factory: RagFactory, database_url: str) -> RunningGateway:
    return await rag_factory(database_url)


async def stop_worker(gw: RunningGateway) -> None:
    if gw.state.ingest is not None:
        await gw.state.ingest.stop()


async def create_key(gw: RunningGateway, name: str = "test") -> str:
    async with gw.client(headers={"authorization": f"Bearer {ADMIN}"}) as client:
        response = await client.post("/admin/keys", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])
