"""`gateway engines sleep MODEL`, the compose profile's start-order step, as compose runs it:
its own process, the group from GATEWAY_ENGINE_GROUPS, fake engines with vLLM's sleep API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest

from tests.fakes.engine import FakeEngine
from tests.fakes.sleeping_engine import Device, SleepingEngine


async def run(model: str, *flags: str, groups: object) -> tuple[int, str]:
    env = {**os.environ, "GATEWAY_ENGINE_GROUPS": json.dumps(groups)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "engines", "sleep", model, *flags,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def group(*engines: tuple[str, str], level: int = 1) -> list[dict[str, object]]:
    listed = [{"url": url, "model": model, "sleep_level": level} for url, model in engines]
    return [{"name": "gpu0", "engines": listed}]


@pytest.fixture
async def first() -> AsyncIterator[SleepingEngine]:
    engine = SleepingEngine("model-a", Device(), awake=True)
    await engine.start()
    yield engine
    await engine.stop()


async def test_first_start_puts_the_engine_to_sleep_at_its_level(first: SleepingEngine) -> None:
    unstarted = "http://127.0.0.1:9"  # the next engine: not started yet
    groups = group((first.url, "model-a"), (unstarted, "model-b"), level=2)
    code, out = await run("model-a", "--first-start", groups=groups)
    assert code == 0, out
    assert first.sleeps == [2] and not first.serving
    assert "asleep, level 2" in out


async def test_a_later_up_leaves_the_engines_to_the_gateway(first: SleepingEngine) -> None:
    other = FakeEngine("model-b")  # already up: this `up` is not the first start
    await other.start()
    try:
        groups = group((first.url, "model-a"), (other.url, "model-b"))
        code, out = await run("model-a", "--first-start", groups=groups)
    finally:
        await other.stop()
    assert code == 0, out
    assert first.sleeps == [] and first.serving
    assert "not a first start" in out


async def test_failures_exit_1_so_compose_starts_nothing_after(first: SleepingEngine) -> None:
    plain = FakeEngine("model-b")  # no sleep API: started without VLLM_SERVER_DEV_MODE=1
    await plain.start()
    try:
        code, out = await run(
            "model-b", groups=group((first.url, "model-a"), (plain.url, "model-b"))
        )
    finally:
        await plain.stop()
    assert code == 1
    assert "would not sleep" in out and "--enable-sleep-mode" in out
    code, out = await run("model-c", groups=group((first.url, "model-a")))
    assert code == 1 and "no engine group serves 'model-c'" in out and "model-a" in out
