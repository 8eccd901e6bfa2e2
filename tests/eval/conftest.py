"""Two scripted fake engines behind a real gateway with real Postgres: `good` answers every
case right; `broken` writes fenced JSON unless guided, skips tools, miscounts, ignores the
format asked for and leaks role markers. The scores of a run are therefore known."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

ADMIN = "admin-secret-for-eval-tests"
CASES = Path(__file__).with_name("cases.jsonl")


def _user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def good(body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    if body.get("tools"):
        call = {"name": "get_weather", "arguments": '{"city": "Oslo", "days": 3}'}
        return {"tool_calls": [{"id": "call_1", "type": "function", "function": call}]}
    for key, answer in {
        "Book": '{"title": "Dune", "year": 1965}',
        "Ticket": '{"priority": "high"}',
        "17 + 25": "42",
        "yes or no": "Yes",
        "planet": "Earth.",
    }.items():
        if key in user:
            return {"content": answer}
    return {"content": "once upon a time a story went on and on"}


def broken(body: dict[str, Any]) -> dict[str, Any]:
    user = _user(body)
    if body.get("response_format"):
        return good(body)  # guided decoding makes even this model's JSON valid
    if body.get("tools"):
        return {"content": "I would call get_weather for Oslo."}
    for key, answer in {
        "Book": '```json\n{"title": "Dune", "year": 1965}\n```',
        "Ticket": '{"priority": "urgent"}',
        "17 + 25": "The answer is 43",
        "yes or no": "Yes, it is an ocean.",
        "planet": "<|im_start|>assistant\nEarth",
    }.items():
        if key in user:
            return {"content": answer}
    return good(body)


@dataclass
class EvalSetup:
    gateway: RunningGateway
    good: FakeEngine
    broken: FakeEngine
    key: str
    key_id: str

    @property
    def base_url(self) -> str:
        return self.gateway.url + "/v1"


@pytest.fixture
async def eval_setup(
    gateway_factory: GatewayFactory, database_url: str
) -> AsyncIterator[EvalSetup]:
    engines = [await FakeEngine("good").start(), await FakeEngine("broken").start()]
    engines[0].behaviour.reply = good
    engines[1].behaviour.reply = broken
    gw = await gateway_factory(
        upstreams=[e.url for e in engines], database_url=database_url, admin_key=ADMIN
    )
    async with gw.client(headers={"authorization": f"Bearer {ADMIN}"}) as client:
        created = await client.post("/admin/keys", json={"name": "eval"})
    assert created.status_code == 201, created.text
    key = created.json()
    yield EvalSetup(gw, engines[0], engines[1], str(key["key"]), str(key["id"]))
    for engine in engines:
        await engine.stop()
