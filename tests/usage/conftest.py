"""Usage fixtures: an async engine on a fresh migrated database, writers that are stopped."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import Settings
from gateway.db.engine import create_engine
from gateway.metrics import Metrics
from gateway.usage.event import UsageEvent
from gateway.usage.writer import UsageWriter


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


WriterFactory = Callable[..., UsageWriter]


@pytest.fixture
async def make_writer(metrics: Metrics) -> AsyncIterator[WriterFactory]:
    made: list[UsageWriter] = []

    def make(
        engine: AsyncEngine, *, start: bool = True, stop_timeout_s: float = 2.0, **overrides: Any
    ) -> UsageWriter:
        # A long interval by default: tests flush explicitly or by batch size.
        settings = Settings(**{"usage_flush_interval_s": 60.0, **overrides})
        writer = UsageWriter(
            engine,
            settings,
            metrics,
            min_backoff_s=0.05,
            max_backoff_s=0.2,
            stop_timeout_s=stop_timeout_s,
        )
        if start:
            writer.start()
        made.append(writer)
        return writer

    yield make
    for writer in made:
        if not writer._closed:
            await writer.stop()


def event(
    key_id: str | None = "k1",
    prompt: int = 10,
    completion: int = 5,
    *,
    model: str = "m1",
    status: int = 200,
    at: datetime | None = None,
    ttft_ms: float | None = 3.0,
    **fields: Any,
) -> UsageEvent:
    return UsageEvent(
        request_id=uuid.uuid4().hex,
        key_id=key_id,
        model=model,
        route="/v1/chat/completions",
        status=status,
        upstream="http://engine:8000",
        prompt_tokens=prompt,
        completion_tokens=completion,
        duration_ms=12.5,
        ttft_ms=ttft_ms,
        created_at=at or datetime.now(UTC),
        **fields,
    )


async def add_key(engine: AsyncEngine, key_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO api_keys (id, name, key_hash, prefix, owner, metadata) "
                "VALUES (:id, :name, :hash, 'sk-gw-x', 'tests', '{}')"
            ),
            {"id": key_id, "name": key_id, "hash": hashlib.sha256(key_id.encode()).digest()},
        )


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")
