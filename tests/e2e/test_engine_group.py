"""Two real vLLM CPU engines in one engine group (the process control, as `gateway up
--chat-group` configures it): requests alternating between the two models are all
answered, the two engines never run at once (checked from /proc, children included), and
the switch times are reported in the header and the metrics.

Heavy: each switch is a whole vLLM start (1-2 min on two cores).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from gateway.local.chat_group import chat_group, chat_group_names
from gateway.local.engine import free_port
from gateway.local.models import prepare_chat_model
from tests.conftest import GatewayFactory

MARKER = "GATEWAY_E2E_ENGINE_GROUP"
CHAT = "/v1/chat/completions"


def running(marker: str) -> list[int]:
    """Live processes carrying `marker` in their environment (vLLM's children inherit it)."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


async def test_alternating_requests_switch_real_engines_one_at_a_time(
    gateway_factory: GatewayFactory, model_cache: Path, tmp_path: Path
) -> None:
    chat = prepare_chat_model(model_cache)
    names = chat_group_names(chat)
    group = chat_group(
        chat,
        ports=[free_port(), free_port()],
        logs=[tmp_path / "a.log", tmp_path / "b.log"],
        cpus="0,1",
        max_model_len=2048,
        min_residency_s=0,
    )
    run = uuid.uuid4().hex
    markers = {}
    for engine in group["engines"]:
        markers[engine["model"]] = f"{run}-{engine['model']}"
        engine["env"][MARKER] = markers[engine["model"]]
    gateway = await gateway_factory(engine_groups=[group], upstream_api_key="sk-e2e-engines")
    overlaps: list[str] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            alive = [n for n in names if running(markers[n])]
            if len(alive) > 1:
                overlaps.append(f"{time.monotonic():.1f}: {alive}")
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    waits: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=900) as client:
            for model in (names[0], names[1], names[0]):
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": "Say hi."}],
                    "max_tokens": 5,
                }
                response = await client.post(CHAT, json=body)
                assert response.status_code == 200, response.text
                assert response.json()["model"] == model
                assert response.json()["choices"][0]["message"]["content"]
                waits.append(int(response.headers["x-gateway-switch-wait-ms"]))
                assert running(markers[model])
                assert not running(markers[next(n for n in names if n != model)])
            listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
            metrics = (await client.get("/metrics")).text
    finally:
        stop.set()
        await watcher
    print(f"switch waits (ms): {waits}")
    assert overlaps == []
    assert all(w > 1000 for w in waits)  # each was a whole engine start
    assert listed[names[0]]["status"] == "awake" and listed[names[1]]["status"] == "asleep"
    assert 'gateway_engine_switches_total{group="local-chat",model="' in metrics
    wake_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("gateway_engine_switch_duration_seconds_count") and 'op="wake"' in line
    ]
    assert wake_lines and float(wake_lines[0].rsplit(" ", 1)[1]) == 3
    gateway.server.should_exit = True
    await gateway.task
    assert running(markers[names[0]]) == [] and running(markers[names[1]]) == []
