"""A fake vLLM engine with vLLM's sleep API, sharing a fake device with its peers.

Like vLLM (vllm/entrypoints/serve/dev/sleep/api_router.py): `POST /sleep?level=N&mode=M`,
`POST /wake_up[?tags=weights|kv_cache]`, `GET /is_sleeping`, and `POST /collective_rpc`
with `reload_weights` (needed after a level-2 sleep before serving). Stricter than vLLM
where a mistake would be silent on a real GPU, so that tests see it:

- waking while another engine holds the device fails like CUDA would (500, out of memory)
  and is recorded as a violation;
- a request to an engine that is asleep (or woke from level 2 without its weights)
  fails loudly (500) and is recorded;
- a sleep while requests run (they would be aborted) is recorded.

Waking takes `wake_s` (a few seconds on a GPU; shorter here, but not instant).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.engine import FakeEngine

_PARTS = frozenset({"weights", "kv_cache"})


@dataclass
class Device:
    """One GPU: who holds memory on it, and every rule broken."""

    holders: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    most_holders: int = 0

    def take(self, model: str) -> None:
        self.holders.add(model)
        self.most_holders = max(self.most_holders, len(self.holders))


class SleepingEngine(FakeEngine):
    def __init__(
        self,
        model: str,
        device: Device,
        *,
        awake: bool = False,
        wake_s: float = 0.3,
        sleep_s: float = 0.05,
    ) -> None:
        super().__init__(model)
        self.device = device
        self.wake_s = wake_s
        self.sleep_s = sleep_s
        self.asleep_parts: set[str] = set() if awake else set(_PARTS)
        self.weights_lost = False
        self.fail_wake = False
        self.running = 0
        self.sleeps: list[int] = []  # levels asked for
        self.wakes = 0
        if awake:
            device.take(model)

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/sleep", self._sleep)
        app.router.add_post("/wake_up", self._wake_up)
        app.router.add_get("/is_sleeping", self._is_sleeping)
        app.router.add_post("/collective_rpc", self._rpc)
        return app

    @property
    def serving(self) -> bool:
        return not self.asleep_parts and not self.weights_lost

    async def _sleep(self, request: web.Request) -> web.Response:
        level = int(request.query.get("level", "1"))
        self.sleeps.append(level)
        if self.running and request.query.get("mode", "abort") == "abort":
            self.device.violations.append(f"{self.model}: slept with {self.running} running")
        await asyncio.sleep(self.sleep_s)
        self.asleep_parts = set(_PARTS)
        self.weights_lost = level >= 2
        self.device.holders.discard(self.model)
        return web.json_response({"status": "sleeping", "level": level})

    async def _wake_up(self, request: web.Request) -> web.Response:
        tags = request.query.getall("tags", []) or list(_PARTS)
        if self.fail_wake:
            return web.json_response({"error": "wake failed (test)"}, status=500)
        others = self.device.holders - {self.model}
        if others:
            self.device.violations.append(f"{self.model}: woke while {sorted(others)} held it")
            return web.json_response({"error": "CUDA out of memory"}, status=500)
        self.wakes += 1
        self.device.take(self.model)
        await asyncio.sleep(self.wake_s)
        self.asleep_parts -= set(tags)
        return web.json_response({"status": "sleeping" if self.asleep_parts else "awake"})

    async def _is_sleeping(self, request: web.Request) -> web.Response:
        return web.json_response({"is_sleeping": bool(self.asleep_parts)})

    async def _rpc(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("method") == "reload_weights":
            if "weights" in self.asleep_parts:
                return web.json_response({"error": "weights asleep"}, status=500)
            self.weights_lost = False
        return web.Response(status=200)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        if not self.serving:
            why = "without its weights" if self.weights_lost else "asleep"
            self.device.violations.append(f"{self.model}: request while {why}")
            return web.json_response({"error": f"engine {why}"}, status=500)
        self.running += 1
        try:
            return await super()._generate(request, chat)
        finally:
            self.running -= 1


@asynccontextmanager
async def awake_and_asleep(
    device: Device | None = None,
) -> AsyncIterator[tuple[SleepingEngine, SleepingEngine]]:
    """Two engines on one device, `chat-a` awake and `chat-b` asleep (0.3 s to wake); on
    exit, the device must never have held both."""
    device = device or Device()
    first = SleepingEngine("chat-a", device, awake=True, wake_s=0.3)
    second = SleepingEngine("chat-b", device, wake_s=0.3)
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()
    assert device.violations == []
    assert device.most_holders <= 1
