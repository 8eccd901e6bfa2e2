"""With a database, adapters loaded through `/admin/adapters` are stored: a restarted
gateway loads them again, and every gateway on the database (workers, replicas) keeps the
same list, so that one unloaded through any of them stays unloaded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.admin import admin_headers
from tests.conftest import GatewayFactory, RunningGateway, stop_gateway
from tests.fakes.engine import FakeEngine

ADAPTERS = "/admin/adapters"
SPEC = {"name": "sql", "path": "adapters/sql", "base_model": "fake-model"}


@pytest.fixture
def models_dir(tmp_path: Path, engine: FakeEngine) -> Path:
    engine.lora.present.add(str(tmp_path / "models" / "adapters" / "sql"))
    return tmp_path / "models"


async def listed(gw: RunningGateway) -> list[dict[str, Any]]:
    async with gw.client(headers=admin_headers()) as client:
        return (await client.get(ADAPTERS)).json()["data"]  # type: ignore[no-any-return]


async def test_an_adapter_loaded_through_the_api_survives_a_restart(
    keyed_factory: GatewayFactory, engine: FakeEngine, models_dir: Path
) -> None:
    first = await keyed_factory(models_dir=str(models_dir))
    async with first.client(headers=admin_headers()) as client:
        assert (await client.post(ADAPTERS, json=SPEC)).status_code == 201
    await stop_gateway(first)
    engine.lora.adapters.clear()  # the engine restarted too

    again = await keyed_factory(models_dir=str(models_dir))
    assert list(engine.lora.adapters) == ["sql"]
    (view,) = await listed(again)
    assert view["id"] == "sql" and view["kept"] and not view["declared"]
    async with again.client(headers=admin_headers()) as client:
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": "sql", "messages": [{"role": "user", "content": "q"}]},
        )
    assert answer.status_code == 200, answer.text


async def test_an_adapter_unloaded_through_one_gateway_stays_unloaded(
    keyed_factory: GatewayFactory, engine: FakeEngine, models_dir: Path
) -> None:
    a, b = [await keyed_factory(models_dir=str(models_dir), discovery_interval_s=0.1) for _ in "ab"]
    async with a.client(headers=admin_headers()) as client:
        assert (await client.post(ADAPTERS, json=SPEC)).status_code == 201
    assert [v["kept"] for v in await listed(b)] == [True]  # b reads the stored list

    async with b.client(headers=admin_headers()) as client:
        assert (await client.delete(f"{ADAPTERS}/sql")).status_code == 200
    await asyncio.sleep(1.0)  # ten discoveries of each: neither loads it back
    assert engine.lora.adapters == {}, engine.lora.calls
    assert await listed(a) == [] and await listed(b) == []
    # And the name is free again, for either.
    async with a.client(headers=admin_headers()) as client:
        assert (await client.post(ADAPTERS, json=SPEC)).status_code == 201


async def test_one_name_loaded_through_two_gateways_at_once(
    keyed_factory: GatewayFactory, engine: FakeEngine, models_dir: Path
) -> None:
    engine.lora.load_delay_s = 0.3
    a, b = [await keyed_factory(models_dir=str(models_dir)) for _ in "ab"]
    async with a.client(headers=admin_headers()) as ca, b.client(headers=admin_headers()) as cb:
        first, second = await asyncio.gather(
            ca.post(ADAPTERS, json=SPEC), cb.post(ADAPTERS, json=SPEC)
        )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    assert [c[0] for c in engine.lora.calls] == ["load"]
