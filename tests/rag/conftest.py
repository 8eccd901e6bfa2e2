"""Real gateways with retrieval on embedded Postgres + pgvector and a fake embedding engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from gateway.db.url import libpq_url
from tests.admin import ADMIN_KEY
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine

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
            "admin_key": ADMIN_KEY,
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


def age_stores(database_url: str, days: int, *store_ids: str) -> None:
    """Make these vector stores look idle for `days`."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "UPDATE vector_stores SET last_active_at = now() - make_interval(days => %s) "
            "WHERE id = ANY(%s)",
            (days, list(store_ids)),
        )
