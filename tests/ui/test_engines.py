"""`GET /admin/engines`: the registry's view plus each engine's vLLM gauges."""

from __future__ import annotations

import time

from gateway.ops.engines import parse_gauges
from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory
from tests.fakes.engine import FakeEngine
from tests.ui.conftest import GaugeEngine

VLLM_SAMPLE = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{engine="0",model_name="m"} 4.0 1731000000000
vllm:kv_cache_usage_perc{engine="0",model_name="a}b"} 0.5
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.9
vllm:num_requests_waiting_by_reason{reason="capacity"} 9
vllm:time_to_first_token_seconds_bucket{le="0.1"} 12
vllm:num_requests_running{engine="2"} NaN
vllm:num_requests_running{engine="3"} garbage
"""


def test_parse_gauges_sums_label_sets_and_skips_the_rest() -> None:
    assert parse_gauges(VLLM_SAMPLE) == {
        "requests_running": 3.0,
        "requests_waiting": 4.0,
        "kv_cache_usage": 0.5,
        "kv_cache_usage_legacy": 0.9,
    }
    assert parse_gauges("") == {}
    assert parse_gauges("not prometheus at all\n{}") == {}


async def test_engines_report_gauges_and_tolerates_engines_without_them(
    gateway_factory: GatewayFactory, engine: FakeEngine, gauge_engine: GaugeEngine
) -> None:
    gw = await gateway_factory(upstreams=[engine.url, gauge_engine.url], admin_key=ADMIN_KEY)
    async with gw.client(headers=admin_headers()) as client:
        body = (await client.get("/admin/engines")).json()
    by_url = {e["url"]: e for e in body["data"]}
    gauges = by_url[gauge_engine.url]
    assert gauges["healthy"] is True and gauges["models"] == ["gauge-model"]
    assert (gauges["requests_running"], gauges["requests_waiting"]) == (3, 7)
    assert gauges["kv_cache_usage"] == 0.42 and gauges["metrics_error"] is None
    plain = by_url[engine.url]
    assert plain["healthy"] is True and plain["in_flight"] == 0 and plain["last_error"] is None
    assert plain["requests_running"] is None and plain["kv_cache_usage"] is None
    assert plain["metrics_error"] == "/metrics answered 404"


async def test_slow_and_dead_engines_do_not_hold_the_panel_up(
    gateway_factory: GatewayFactory, gauge_engine: GaugeEngine
) -> None:
    gauge_engine.metrics_delay_s = 5
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    gw = await gateway_factory(upstreams=[gauge_engine.url, dead], admin_key=ADMIN_KEY)
    started = time.monotonic()
    async with gw.client(headers=admin_headers()) as client:
        body = (await client.get("/admin/engines")).json()
    assert time.monotonic() - started < 3  # scraped concurrently, with a short timeout
    slow, down = body["data"]
    assert "did not answer" in slow["metrics_error"] and slow["requests_running"] is None
    assert down["healthy"] is False and down["last_error"]
    assert "unreachable" in down["metrics_error"]


async def test_legacy_kv_gauge_counts_only_without_the_new_one(
    gateway_factory: GatewayFactory, gauge_engine: GaugeEngine
) -> None:
    gauge_engine.metrics = "vllm:gpu_cache_usage_perc 0.25\n"
    gw = await gateway_factory(upstreams=[gauge_engine.url], admin_key=ADMIN_KEY)
    async with gw.client(headers=admin_headers()) as client:
        (engine_view,) = (await client.get("/admin/engines")).json()["data"]
    assert engine_view["kv_cache_usage"] == 0.25


async def test_admin_only(gateway_factory: GatewayFactory, engine: FakeEngine) -> None:
    gw = await gateway_factory(upstreams=[engine.url], admin_key=ADMIN_KEY)
    async with gw.client(headers={"authorization": "Bearer not-admin"}) as client:
        assert (await client.get("/admin/engines")).status_code == 403
