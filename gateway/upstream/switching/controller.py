"""The switching policy driven for real: one `Policy` per engine group, asyncio futures for
the waiting requests, a task per sleep or wake, and a timer for the policy's deadlines.

The engine client (gateway.upstream.engines) calls `acquire` before it sends a request to
a grouped engine (waiting while the engine wakes) and `release` when the request is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.errors import UpstreamUnavailable
from gateway.metrics import Metrics
from gateway.upstream.registry import Registry, Upstream
from gateway.upstream.switching.backends import Control
from gateway.upstream.switching.config import EngineGroup
from gateway.upstream.switching.history import SwitchHistory
from gateway.upstream.switching.policy import (
    Action,
    Admit,
    Limits,
    Policy,
    Refuse,
    Sleep,
    State,
    Wake,
    Why,
)

log = logging.getLogger("gateway.upstream.switching")

_REFUSALS = {
    Why.QUEUE_FULL: ("model_queue_full", "too many requests are already waiting for it"),
    Why.WAKE_FAILED: ("engine_wake_failed", "its engine failed to wake up"),
    Why.SLEEP_FAILED: ("engine_switch_failed", "the engine holding the device would not sleep"),
    Why.DRAIN_TIMEOUT: ("engine_busy", "the engine holding the device stayed busy too long"),
    Why.COOLING_DOWN: ("engine_wake_failed", "its engine failed to wake up recently"),
    Why.LOST: ("engine_lost", "its engine stopped while the request waited"),
}

# Published model states (`/v1/models`): draining still serves, sleeping is leaving.
_STATUS = {
    State.ASLEEP: "asleep",
    State.WAKING: "waking",
    State.AWAKE: "awake",
    State.DRAINING: "awake",
    State.SLEEPING: "asleep",
}


def refusal(model: str, why: Why, retry_after_s: float) -> UpstreamUnavailable:
    code, reason = _REFUSALS[why]
    seconds = max(1, math.ceil(retry_after_s))
    return UpstreamUnavailable(
        f"The model `{model}` is not available right now: {reason}. Retry in {seconds} s.",
        code=code,
        headers={"retry-after": str(seconds), "retry-after-ms": str(round(retry_after_s * 1000))},
    )


@dataclass(slots=True)
class _Group:
    config: EngineGroup
    policy: Policy
    controls: dict[str, Control]
    models: dict[str, str]  # url -> model
    waiters: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float | None = None  # what the timer waits for


class Switcher:
    def __init__(
        self,
        groups: list[EngineGroup],
        registry: Registry,
        controls: dict[str, Control],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.clock = clock
        self.history = SwitchHistory(wall=wall)
        # Run after a successful wake, before the waiters go in (LoRA adapters an engine
        # restarted without are loaded again); it must not raise.
        self.on_wake: Callable[[Upstream], Awaitable[None]] | None = None
        self._groups: dict[str, _Group] = {}  # by engine url
        self._timers: list[asyncio.Task[None]] = []
        self._watch: asyncio.Task[None] | None = None
        for config in groups:
            limits = Limits(
                max_awake=config.max_awake,
                drain_timeout_s=config.drain_timeout_s,
                min_residency_s=config.min_residency_s,
                idle_sleep_s=config.idle_sleep_s,
                queue_max=config.queue_max,
                retry_after_s=config.retry_after_s,
            )
            urls = [e.url for e in config.engines]
            group = _Group(
                config,
                Policy(urls, limits),
                {url: controls[url] for url in urls},
                {e.url: e.model for e in config.engines},
            )
            for engine in config.engines:
                registry.declare_grouped(engine.url, config.name, engine.model)
                self._groups[engine.url] = group

    # -- what the rest of the gateway asks -----------------------------------------------
    def asleep(self, upstream: Upstream) -> bool:
        group = self._groups.get(upstream.url)
        return group is not None and group.policy.state(upstream.url) is not State.AWAKE

    def status(self, upstream: Upstream) -> str | None:
        group = self._groups.get(upstream.url)
        return None if group is None else _STATUS[group.policy.state(upstream.url)]

    async def acquire(self, upstream: Upstream) -> float:
        """Wait until the engine may take one more request; the seconds waited. The
        caller calls `release` once that request is over (and only if this returned)."""
        group = self._groups[upstream.url]
        url, model = upstream.url, group.models[upstream.url]
        started = self.clock()
        ticket, actions = group.policy.request(url, started)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group.waiters[ticket] = waiter
        self._execute(group, actions)
        # Let in at once, or queued behind a switch: only the latter is a wait (on a busy
        # machine, the wall clock alone would count scheduling delays as waits).
        queued = not waiter.done()
        if queued:
            self._gauge(group, url)
        try:
            await waiter
        except asyncio.CancelledError:
            # The client left (or the server stops): out of the queue, or, if it was let
            # in meanwhile, give the place back.
            removed, more = group.policy.cancel(ticket, url, self.clock())
            group.waiters.pop(ticket, None)
            admitted = waiter.done() and not waiter.cancelled() and waiter.exception() is None
            if not removed and admitted:
                more += group.policy.finished(url, self.clock())
            self._execute(group, more)
            self._gauge(group, url)
            raise
        if not queued:
            return 0.0
        waited = self.clock() - started
        self.metrics.engine_switch_wait.labels(model).observe(waited)
        return waited

    def release(self, upstream: Upstream) -> None:
        group = self._groups[upstream.url]
        self._execute(group, group.policy.finished(upstream.url, self.clock()))

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Learn which engines are awake; put any beyond a group's budget to sleep."""
        for group in {id(g): g for g in self._groups.values()}.values():
            awake: list[str] = []
            for url, control in group.controls.items():
                try:
                    is_awake = await control.is_awake()
                except UpstreamUnavailable as exc:
                    log.warning("engine state unknown", extra={"upstream": url, "error": str(exc)})
                    is_awake = False
                if is_awake and len(awake) >= group.config.max_awake:
                    log.info("engine over its group's budget: to sleep", extra={"upstream": url})
                    with contextlib.suppress(UpstreamUnavailable):
                        await control.sleep()
                elif is_awake:
                    awake.append(url)
            group.policy = Policy(
                list(group.controls), group.policy.limits, awake=frozenset(awake), now=self.clock()
            )
            for url in group.controls:
                self._gauge(group, url)
            self._timers.append(asyncio.create_task(self._timer(group), name="engine-switch-timer"))
        self._watch = asyncio.create_task(self._watch_exits(), name="engine-switch-watch")

    async def stop(self) -> None:
        tasks = [*self._timers, *([self._watch] if self._watch else [])]
        for group in {id(g): g for g in self._groups.values()}.values():
            tasks += group.tasks
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for url, group in self._groups.items():
            with contextlib.suppress(Exception):
                await group.controls[url].close()

    # -- carrying out the policy's actions ---------------------------------------------
    def _execute(self, group: _Group, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Admit):
                waiter = group.waiters.pop(action.ticket, None)
                if waiter is None or waiter.done():
                    # Its request is gone: the place it was given goes back at once.
                    self._execute(group, group.policy.finished(action.engine, self.clock()))
                else:
                    waiter.set_result(None)
            elif isinstance(action, Refuse):
                waiter = group.waiters.pop(action.ticket, None)
                if waiter is not None and not waiter.done():
                    model = group.models[action.engine]
                    waiter.set_exception(refusal(model, action.why, action.retry_after_s))
            else:
                self._spawn(group, action)
            self._gauge(group, action.engine)
        # A drain starts without any action, and its deadline matters all the same.
        if actions or group.policy.next_deadline() != group.deadline:
            group.changed.set()

    def _spawn(self, group: _Group, action: Sleep | Wake) -> None:
        task = asyncio.create_task(self._switch(group, action), name="engine-switch")
        group.tasks.add(task)
        task.add_done_callback(group.tasks.discard)

    async def _switch(self, group: _Group, action: Sleep | Wake) -> None:
        url, op = action.engine, "wake" if isinstance(action, Wake) else "sleep"
        control, model = group.controls[url], group.models[url]
        started = self.clock()
        log.info(f"engine {op} starting", extra={"upstream": url, "model": model})
        try:
            async with asyncio.timeout(group.config.switch_timeout_s):
                await (control.wake() if op == "wake" else control.sleep())
            ok = True
        except (UpstreamUnavailable, TimeoutError) as exc:
            ok = False
            reason = str(exc) or f"no answer within {group.config.switch_timeout_s:.0f} s"
            log.error(f"engine {op} failed", extra={"upstream": url, "error": reason})
        elapsed = self.clock() - started
        self.metrics.engine_switches.labels(
            group.config.name, model, op, "ok" if ok else "failed"
        ).inc()
        self.metrics.engine_switch_duration.labels(group.config.name, op).observe(elapsed)
        if ok:
            log.info(f"engine {op} done", extra={"upstream": url, "seconds": round(elapsed, 3)})
        if ok and op == "wake" and self.on_wake is not None:
            await self.on_wake(self._upstream(url))
        now = self.clock()
        self._routable(url)
        name = group.config.name
        if op == "wake":
            self.history.woke(name, url, model, started, now, ok, group.policy.queued(url))
            self._execute(group, group.policy.woke(url, ok, now))
        else:
            actions = group.policy.slept(url, ok, now)
            woken = [a.engine for a in actions if isinstance(a, Wake)]
            self.history.slept(name, model, started, now, ok, woken)
            self._execute(group, actions)

    async def _timer(self, group: _Group) -> None:
        while True:
            deadline = group.deadline = group.policy.next_deadline()
            group.changed.clear()
            # At least a moment: a deadline already past must not spin the loop.
            wait = None if deadline is None else max(0.01, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await group.changed.wait()
            self._execute(group, group.policy.tick(self.clock()))

    async def _watch_exits(self) -> None:
        """An engine process that dies on its own is asleep from then on."""
        while True:
            await asyncio.sleep(0.5)
            for url, group in self._groups.items():
                state = group.policy.state(url)
                if state in (State.AWAKE, State.DRAINING) and group.controls[url].exited():
                    log.error("engine exited on its own", extra={"upstream": url})
                    with contextlib.suppress(Exception):
                        await group.controls[url].close()
                    self._routable(url)
                    self._execute(group, group.policy.lost(url, self.clock()))

    def _routable(self, url: str) -> None:
        """After a switch or a loss the policy, not the last health check, decides whether
        requests may go there (a failed wake has its own 503 with retry-after)."""
        self._upstream(url).healthy = True

    def _upstream(self, url: str) -> Upstream:
        return next(u for u in self.registry.upstreams if u.url == url)

    def _gauge(self, group: _Group, url: str) -> None:
        model = group.models[url]
        self.metrics.engine_queue_depth.labels(model).set(group.policy.queued(url))
        awake = group.policy.state(url) in (State.AWAKE, State.DRAINING)
        self.metrics.engine_awake.labels(model).set(1 if awake else 0)
