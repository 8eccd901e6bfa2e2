"""The engine page for engine groups: each engine's state (awake, asleep, waking), the
group's last switches (when, from which model to which, how long, how many requests
waited), and LoRA adapters of a grouped engine loaded again when it wakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.upstream.switching.history import SwitchHistory
from tests.admin import ADMIN_KEY, admin_headers
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.sleeping_engine import SleepingEngine, awake_and_asleep
from tests.ui.conftest import sign_in

CHAT = "/v1/chat/completions"


def ask(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SleepingEngine, SleepingEngine]]:
    async with awake_and_asleep() as engines:
        yield engines


async def grouped(
    factory: GatewayFactory, engines: tuple[SleepingEngine, ...], **settings: Any
) -> RunningGateway:
    group = {
        "name": "gpu0",
        "min_residency_s": 0,
        "drain_timeout_s": 5,
        "engines": [{"url": e.url, "model": e.model} for e in engines],
    }
    return await factory(engine_groups=[group], admin_key=ADMIN_KEY, **settings)


async def test_states_and_last_switches_in_the_report_and_on_the_page(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, second = pair
    gw = await grouped(gateway_factory, pair)
    before = time.time()
    async with gw.client(headers=admin_headers()) as client:
        report = (await client.get("/admin/engines")).json()
        states = {e["url"]: (e["group"], e["state"]) for e in report["data"]}
        assert states == {first.url: ("gpu0", "awake"), second.url: ("gpu0", "asleep")}
        assert report["switches"] == []
        # Three requests wait together for chat-b: one switch, three waiters.
        answers = await asyncio.gather(
            *(client.post(CHAT, json=ask(second.model)) for _ in range(3))
        )
        assert [a.status_code for a in answers] == [200, 200, 200]
        report = (await client.get("/admin/engines")).json()
    after = {e["url"]: e["state"] for e in report["data"]}
    assert after == {first.url: "asleep", second.url: "awake"}
    (switch,) = report["switches"]
    assert (switch["group"], switch["from_model"], switch["to_model"]) == (
        "gpu0",
        "chat-a",
        "chat-b",
    )
    assert switch["ok"] is True and switch["waited"] == 3
    assert 0.3 <= switch["seconds"] < 5  # the sleep and the 0.3 s wake
    assert before <= switch["at"] <= time.time()

    async with gw.client(follow_redirects=False) as browser:
        assert (await sign_in(browser)).status_code == 303
        page = (await browser.get("/ui/engines")).text
    assert "Last switches" in page
    assert 'data-state="asleep"' in page and 'data-state="awake"' in page
    row = page[page.index("<tr data-switch>") :]
    row = row[: row.index("</tr>")]
    for shown in (
        "gpu0",
        "chat-a",
        "chat-b",
        '<td class="num" data-label="Requests waiting">3</td>',
        "ok",
    ):
        assert shown in row, row


async def test_an_adapter_of_a_sleeping_engine_is_loaded_when_it_wakes(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine], tmp_path: Path
) -> None:
    first, second = pair
    folder = str(tmp_path / "adapters" / "b-lora")
    second.lora.present.add(folder)
    gw = await grouped(gateway_factory, pair, models_dir=str(tmp_path))
    async with gw.client(headers=admin_headers()) as client:
        spec = {"name": "b-lora", "path": "adapters/b-lora", "base_model": second.model}
        loaded = await client.post("/admin/adapters", json=spec)
        assert loaded.status_code == 201, loaded.text
        assert loaded.json()["engines"] == [second.url]
        assert second.lora.calls == []  # asleep: not asked, and not woken for it
        assert second.wakes == 0
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
        assert listed["b-lora"]["parent"] == second.model
        assert listed["b-lora"]["status"] == "asleep"
        # A request for the adapter wakes its engine, which gets the adapter first.
        answer = await client.post(CHAT, json=ask("b-lora"))
        assert answer.status_code == 200, answer.text
        assert second.wakes == 1 and list(second.lora.adapters) == ["b-lora"]
        assert second.seen.bodies[-1]["model"] == "b-lora"
        # Back to chat-a and to the adapter again: loaded again on every wake ("already
        # loaded" from an engine that kept it is fine).
        assert (await client.post(CHAT, json=ask(first.model))).status_code == 200
        assert (await client.post(CHAT, json=ask("b-lora"))).status_code == 200
    assert [c[0] for c in second.lora.calls] == ["load", "load"]


def test_history_pairs_a_sleep_with_the_wake_it_made_room_for() -> None:
    history = SwitchHistory(kept=2, wall=lambda: 1000.0)
    history.slept("g", "a", started=10.0, now=11.0, ok=True, woken=["http://b"])
    history.woke("g", "http://b", "b", started=11.0, now=14.5, ok=True, waited=2)
    history.woke("g", "http://c", "c", started=20.0, now=21.0, ok=False, waited=1)
    history.slept("g", "c", started=30.0, now=30.5, ok=True, woken=[])  # idle, for nobody
    latest = [r.view() for r in history.latest()]
    assert [(r["from_model"], r["to_model"], r["ok"]) for r in latest] == [
        ("c", None, True),
        (None, "c", False),
    ]  # newest first, two kept
    history = SwitchHistory(wall=lambda: 1000.0)
    history.slept("g", "a", started=10.0, now=11.0, ok=True, woken=["http://b"])
    history.woke("g", "http://b", "b", started=11.0, now=14.5, ok=True, waited=2)
    (switch,) = history.latest()
    assert (switch.from_model, switch.to_model, switch.seconds, switch.waited) == ("a", "b", 4.5, 2)


async def test_the_page_without_groups_has_no_switch_table(
    gateway_factory: GatewayFactory, pair: tuple[SleepingEngine, SleepingEngine]
) -> None:
    first, _ = pair
    gw = await gateway_factory(upstreams=[first.url], admin_key=ADMIN_KEY)
    async with gw.client(follow_redirects=False) as browser:
        assert (await sign_in(browser)).status_code == 303
        page = (await browser.get("/ui/engines")).text
    assert "Last switches" not in page and "not grouped" in page
    async with httpx.AsyncClient(base_url=gw.url, headers=admin_headers()) as client:
        report = (await client.get("/admin/engines")).json()
    assert report["switches"] == [] and report["data"][0]["state"] is None
