"""A gateway with everything the console shows: Postgres, keys, retrieval and three engines
(the fake chat engine, the fake embedder, and a fake engine that serves vLLM's gauges)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from gateway.usage import rollup
from tests.admin import ADMIN_KEY
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine, free_port
from tests.ui.browser import browser  # noqa: F401  (the fixture, for every test here)

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="gauge-model"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="gauge-model"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="gauge-model"} 0.42
"""


class GaugeEngine:
    """Just enough of vLLM to be discovered, plus `/metrics` (optionally slow or absent)."""

    def __init__(self, model: str = "gauge-model") -> None:
        self.model = model
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics = METRICS
        self.metrics_delay_s = 0.0
        self._runner: web.AppRunner | None = None

    async def start(self) -> GaugeEngine:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response()

    async def _models(self, request: web.Request) -> web.Response:
        card = {"id": self.model, "object": "model", "owned_by": "vllm", "max_model_len": 4096}
        return web.json_response({"object": "list", "data": [card]})

    async def _metrics(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.metrics_delay_s)
        return web.Response(text=self.metrics, content_type="text/plain")


@pytest.fixture
async def gauge_engine() -> AsyncIterator[GaugeEngine]:
    fake = await GaugeEngine().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def console_gateway(
    gateway_factory: GatewayFactory,
    database_url: str,
    engine: FakeEngine,
    embedder: FakeEmbedder,
    gauge_engine: GaugeEngine,
) -> AsyncIterator[RunningGateway]:
    gw = await gateway_factory(
        upstreams=[engine.url, embedder.url, gauge_engine.url],
        database_url=database_url,
        admin_key=ADMIN_KEY,
        embedding_model=embedder.model,
        usage_flush_interval_s=0.2,
        ingest_poll_s=0.2,
    )
    yield gw


_TOKEN = re.compile(r'name="(login_token|csrf_token)" value="([^"]+)"')


def hidden(page: str, name: str) -> str:
    for found, value in _TOKEN.findall(page):
        if found == name:
            return str(value)
    raise AssertionError(f"no {name} in the page")


async def sign_in(client: httpx.AsyncClient, key: str = ADMIN_KEY) -> httpx.Response:
    """The browser's sign-in, by hand: the form (and its pre-session cookie), then the POST."""
    form = await client.get("/ui/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/ui/login",
        data={"admin_key": key, "login_token": hidden(form.text, "login_token")},
    )


@pytest.fixture
async def console(console_gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in httpx client; `console.csrf` holds the session's CSRF token."""
    async with console_gateway.client(follow_redirects=False) as client:
        response = await sign_in(client)
        assert response.status_code == 303, response.text
        page = await client.get("/ui/keys")
        client.csrf = hidden(page.text, "csrf_token")  # type: ignore[attr-defined]
        yield client


SEED_SQL = """
INSERT INTO usage_events (request_id, key_id, model, route, upstream, status, prompt_tokens,
    completion_tokens, duration_ms, ttft_ms, streamed, cancelled, created_at)
SELECT 'seed-' || g,
       (%(keys)s::text[])[1 + (g / 7) %% cardinality(%(keys)s::text[])],
       (%(models)s::text[])[1 + (g / 3) %% cardinality(%(models)s::text[])],
       '/v1/chat/completions', NULL,
       CASE WHEN g %% 23 = 0 THEN 429 WHEN g %% 61 = 0 THEN 503 ELSE 200 END,
       200 + (g * 37) %% 900, 40 + (g * 11) %% 500, 900 + (g * 7) %% 4000,
       CASE WHEN g %% 2 = 0 THEN 120 + (g * 13) %% 400 + m / 4 END, g %% 2 = 0, false,
       now() - interval '1 minute' * m
FROM (SELECT g, (g * 7919) %% 1440 AS m FROM generate_series(1, %(n)s) AS g) AS s
-- busier in the (UTC) afternoon than at night
WHERE (g %% 100) < 50 + 45 * sin(2 * pi() * m / 1440.0)
"""


def seed_usage(database_url: str, keys: list[str], models: list[str], n: int = 2000) -> None:
    """A day of synthetic traffic with a daily rhythm, so the charts have shape."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        conn.execute(SEED_SQL, {"keys": keys, "models": models, "n": n})
        for sql in rollup.REBUILD:  # the writer would have kept it; this bypasses the writer
            conn.execute(sql)
