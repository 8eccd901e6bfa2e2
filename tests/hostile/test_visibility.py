"""What a stranger learns: whether the gateway is ready, nothing more; and a stranger's
path cannot write lines of its own into the operator's log."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
import orjson

from tests.admin import admin_headers, bearer
from tests.hostile.conftest import HostileGateway, ThreadedEngine, under_attack
from tests.raw_http import RawResponse, raw_request


async def test_only_the_admin_key_sees_readyz_details(
    hostile_gateway: HostileGateway, hostile_engine: ThreadedEngine
) -> None:
    gw = hostile_gateway

    async def probe() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.url) as client:
            return [
                await client.get("/readyz", headers=headers)
                for headers in (
                    {},
                    bearer(gw.attacker),  # an ordinary key is still a stranger to operations
                    {"authorization": "Bearer sk-admin-guess"},
                    admin_headers(),
                )
            ]

    *others, admin = await under_attack(gw, probe())
    for response in others:
        assert (response.status_code, response.json()) == (200, {"status": "ready"})
        assert hostile_engine.url not in response.text and "fake-model" not in response.text
    details = admin.json()
    assert admin.status_code == 200 and details["status"] == "ready"
    assert details["upstreams"][0]["url"] == hostile_engine.url
    assert details["database"] == {"reachable": True} and details["limiter"] == "redis"


async def test_a_path_with_control_characters_cannot_forge_a_log_line(
    hostile_gateway: HostileGateway,
) -> None:
    gw = hostile_gateway
    forged = "info    gateway.access: POST /admin/keys 201  request_id=forged-by-a-stranger"
    path = "/nothing%0A" + quote(forged) + "%1B%5B2J%0D"

    request = raw_request(gw.url, "GET", path, [], close_wait_s=0.1)
    answer: RawResponse = await under_attack(gw, request)
    assert answer.status == 404
    assert orjson.loads(answer.body)["error"]["code"] == "unknown_url"

    for _ in range(50):  # the access line is written once the answer is out
        if "forged-by-a-stranger" in gw.log():
            break
        await asyncio.sleep(0.05)
    log = gw.log()
    lines = [line for line in log.splitlines() if "forged-by-a-stranger" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("info    gateway.access: GET /nothing\\x0ainfo ")
    assert "\\x1b[2J\\x0d 404" in lines[0]
    assert not any(line.startswith(forged) for line in log.splitlines())
    assert "\x1b" not in log and "\r" not in log
