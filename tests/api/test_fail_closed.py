"""Fail closed: no gateway answers strangers by accident."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.cli_settings import is_loopback, open_exposure
from gateway.config import Settings
from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory
from tests.fakes.engine import FakeEngine

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("gateway.lan", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serving_without_keys_beyond_loopback_needs_a_decision() -> None:
    assert open_exposure(Settings(host="127.0.0.1")) is None
    refusal = open_exposure(Settings(host="0.0.0.0"))
    assert refusal is not None
    for remedy in ("GATEWAY_DATABASE_URL", "GATEWAY_ADMIN_KEY", "GATEWAY_ALLOW_OPEN=true"):
        assert remedy in refusal
    assert open_exposure(Settings(host="0.0.0.0", allow_open=True)) is None
    assert open_exposure(Settings(host="0.0.0.0", database_url="postgresql://x/y")) is None
    assert open_exposure(Settings(host="0.0.0.0", admin_key="adm")) is None
    assert open_exposure(Settings(host="0.0.0.0", admin_key="")) is not None


def test_gateway_serve_refuses_to_start_open_on_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DATABASE_URL", "ADMIN_KEY", "ALLOW_OPEN", "CONFIG"):
        monkeypatch.delenv(f"GATEWAY_{name}", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "GATEWAY_ALLOW_OPEN=true" in result.output and "Traceback" not in result.output


async def test_an_admin_key_without_a_database_guards_v1(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url], admin_key=ADMIN_KEY)
    async with gw.client() as client:
        missing = await client.post(CHAT, json=BODY)
        wrong = await client.post(CHAT, json=BODY, headers={"authorization": "Bearer sk-gw-x"})
        models = await client.get("/v1/models")
        ok = await client.post(CHAT, json=BODY, headers=admin_headers())
        listed = await client.get("/v1/models", headers={"x-api-key": ADMIN_KEY})
    assert [r.status_code for r in (missing, wrong, models)] == [401, 401, 401]
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "sk-gw-x" not in wrong.text and ADMIN_KEY not in wrong.text
    assert ok.status_code == 200 and listed.json()["data"][0]["id"] == "fake-model"


async def test_without_database_or_admin_key_v1_stays_open_on_loopback(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    gw = await gateway_factory(upstreams=[engine.url])
    async with gw.client() as client:
        assert (await client.post(CHAT, json=BODY)).status_code == 200
