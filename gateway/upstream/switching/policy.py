"""Which engine of a group holds the device, and who waits: the switching policy, pure.

No I/O and no clock: every call takes `now` and returns the actions the controller must
carry out (admit or refuse a waiting request, put an engine to sleep, wake one), and the
controller reports back what happened (`slept`, `woke`, `lost`).

One engine's life:   asleep ─Wake→ waking ─woke→ awake ─(switch)→ draining ─(idle)→
sleeping ─slept→ asleep. A request for an awake engine goes straight through; any other
waits in its engine's queue (bounded: beyond it, refused with a retry-after). One switch
runs at a time per group: the engine waited for longest wins the next wake; an engine
leaves only after `min_residency_s` awake, and only once its running requests are done
(never cut): a drain longer than `drain_timeout_s` is called off instead. A failed wake or
sleep refuses that engine's waiters and the engine for `retry_after_s`, then it is tried
again. An engine never wakes while `max_awake` others are not fully asleep.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.upstream.switching.actions import (
    Action,
    Admit,
    Limits,
    Refuse,
    Sleep,
    State,
    Wake,
    Why,
)

__all__ = ["Action", "Admit", "Limits", "Policy", "Refuse", "Sleep", "State", "Wake", "Why"]


@dataclass(slots=True)
class _Engine:
    name: str
    state: State = State.ASLEEP
    in_flight: int = 0
    queue: deque[tuple[int, float]] = field(default_factory=deque)  # (ticket, since)
    awake_since: float = 0.0
    last_used: float = 0.0
    cooling_until: float = 0.0


@dataclass(slots=True)
class _Switch:
    victim: _Engine | None  # None: a free slot, nothing to put to sleep
    target: _Engine | None  # None: an idle engine goes to sleep for nobody
    drain_deadline: float = 0.0


class Policy:
    def __init__(
        self,
        engines: list[str],
        limits: Limits,
        *,
        awake: frozenset[str] = frozenset(),
        now: float = 0.0,
    ) -> None:
        if len(awake) > limits.max_awake:
            raise ValueError("more engines awake than the group allows")
        self.limits = limits
        self._engines = {name: _Engine(name) for name in engines}
        for name in awake:
            engine = self._engines[name]
            engine.state, engine.awake_since, engine.last_used = State.AWAKE, now, now
        self._switch: _Switch | None = None
        self._tickets = 0

    # -- what the controller asks ------------------------------------------------------
    def state(self, engine: str) -> State:
        return self._engines[engine].state

    def queued(self, engine: str) -> int:
        return len(self._engines[engine].queue)

    def in_flight(self, engine: str) -> int:
        return self._engines[engine].in_flight

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next, if nothing else happens meanwhile."""
        times: list[float] = []
        switch = self._switch
        if switch is not None:
            if switch.victim is not None and switch.victim.state is State.DRAINING:
                times.append(switch.drain_deadline)
        else:
            if self._next_target() is not None:
                times += [e.awake_since + self.limits.min_residency_s for e in self._awake()]
            if self.limits.idle_sleep_s > 0:
                times += [
                    e.last_used + self.limits.idle_sleep_s
                    for e in self._awake()
                    if e.in_flight == 0
                ]
        return min(times) if times else None

    # -- events --------------------------------------------------------------------------
    def request(self, engine: str, now: float) -> tuple[int, list[Action]]:
        """A request for `engine`: its ticket, and (among the actions) its Admit or Refuse
        at once, or later from another call."""
        self._tickets += 1
        ticket = self._tickets
        found = self._engines[engine]
        if found.state is State.AWAKE:
            found.in_flight += 1
            found.last_used = now
            return ticket, [Admit(ticket, engine)]
        if found.cooling_until > now:
            return ticket, [Refuse(ticket, engine, Why.COOLING_DOWN, found.cooling_until - now)]
        if len(found.queue) >= self.limits.queue_max:
            return ticket, [Refuse(ticket, engine, Why.QUEUE_FULL, self.limits.retry_after_s)]
        found.queue.append((ticket, now))
        return ticket, self._plan(now)

    def finished(self, engine: str, now: float) -> list[Action]:
        """An admitted request is done (answered, failed or abandoned)."""
        found = self._engines[engine]
        found.in_flight = max(0, found.in_flight - 1)
        found.last_used = now
        if found.state is State.DRAINING and found.in_flight == 0:
            found.state = State.SLEEPING
            return [Sleep(engine)]
        return []

    def cancel(self, ticket: int, engine: str, now: float) -> tuple[bool, list[Action]]:
        """A waiting request gave up. False if it was no longer waiting (then it was
        admitted or refused already, and the caller owns what that implies)."""
        found = self._engines[engine]
        for index, (queued, _) in enumerate(found.queue):
            if queued == ticket:
                del found.queue[index]
                break
        else:
            return False, []
        switch = self._switch
        if (
            switch is not None
            and switch.target is found
            and not found.queue
            and switch.victim is not None
            and switch.victim.state is State.DRAINING
        ):
            # Nobody waits for the target any more: the drained engine keeps the device.
            victim = switch.victim
            self._switch = None
            victim.state = State.AWAKE
            return True, self._admit_all(victim, now) + self._plan(now)
        return True, []

    def slept(self, engine: str, ok: bool, now: float) -> list[Action]:
        found = self._engines[engine]
        switch = self._switch
        if switch is None or switch.victim is not found or found.state is not State.SLEEPING:
            return []  # stale report (the engine was declared lost meanwhile)
        target = switch.target
        if not ok:
            # It may still hold the device: count it awake, and let its waiters in.
            self._switch = None
            found.state, found.awake_since = State.AWAKE, now
            actions = self._admit_all(found, now)
            if target is not None:
                actions += self._fail(target, Why.SLEEP_FAILED, now)
            return actions + self._plan(now)
        found.state = State.ASLEEP
        if target is None or not target.queue:
            self._switch = None
            return self._plan(now)
        switch.victim = None
        target.state = State.WAKING
        return [Wake(target.name)]

    def woke(self, engine: str, ok: bool, now: float) -> list[Action]:
        found = self._engines[engine]
        switch = self._switch
        if switch is None or switch.target is not found or found.state is not State.WAKING:
            return []
        self._switch = None
        if not ok:
            found.state = State.ASLEEP
            return self._fail(found, Why.WAKE_FAILED, now) + self._plan(now)
        found.state, found.awake_since = State.AWAKE, now
        return self._admit_all(found, now) + self._plan(now)

    def lost(self, engine: str, now: float) -> list[Action]:
        """The engine is gone (its process died): asleep from now on; a switch it was part
        of ends as failed. Requests it was running finish on their own (and report it)."""
        found = self._engines[engine]
        switch = self._switch
        actions: list[Action] = []
        if switch is not None and found is switch.victim:
            # The device is free: the target may wake at once (its waiters still wait).
            self._switch = None
        elif switch is not None and found is switch.target:
            actions += self._fail(found, Why.LOST, now)
            victim = switch.victim
            if victim is not None and victim.state is State.SLEEPING:
                switch.target = None  # its sleep is under way: it ends for nobody
            else:
                self._switch = None
                if victim is not None and victim.state is State.DRAINING:
                    victim.state = State.AWAKE
                    actions += self._admit_all(victim, now)
        found.state = State.ASLEEP
        return actions + self._plan(now)

    def tick(self, now: float) -> list[Action]:
        """Time passed: drains that took too long, residencies that ended, idle engines."""
        actions: list[Action] = []
        switch = self._switch
        if (
            switch is not None
            and switch.victim is not None
            and switch.victim.state is State.DRAINING
            and now >= switch.drain_deadline
        ):
            # Streams are never cut: the switch is called off, the busy engine stays.
            victim = switch.victim
            self._switch = None
            victim.state, victim.awake_since = State.AWAKE, now
            actions += self._admit_all(victim, now)
            if switch.target is not None:
                actions += self._refuse_all(switch.target, Why.DRAIN_TIMEOUT)
        actions += self._plan(now)
        if self._switch is None and self.limits.idle_sleep_s > 0:
            for engine in self._awake():
                idle_since = engine.last_used + self.limits.idle_sleep_s
                if engine.in_flight == 0 and not engine.queue and now >= idle_since:
                    engine.state = State.SLEEPING
                    self._switch = _Switch(engine, None)
                    actions.append(Sleep(engine.name))
                    break
        return actions

    # -- the decisions -------------------------------------------------------------------
    def _awake(self) -> list[_Engine]:
        return [e for e in self._engines.values() if e.state is State.AWAKE]

    def _next_target(self) -> _Engine | None:
        """The asleep engine whose first waiter has waited longest (first come, first
        served across models; within a model, the queue keeps its order)."""
        waiting = [e for e in self._engines.values() if e.state is State.ASLEEP and e.queue]
        return min(waiting, key=lambda e: e.queue[0][0], default=None)

    def _plan(self, now: float) -> list[Action]:
        if self._switch is not None:
            return []
        target = self._next_target()
        if target is None:
            return []
        holding = [e for e in self._engines.values() if e.state is not State.ASLEEP]
        if len(holding) < self.limits.max_awake:
            target.state = State.WAKING
            self._switch = _Switch(None, target)
            return [Wake(target.name)]
        resident = self.limits.min_residency_s
        victims = [e for e in self._awake() if now - e.awake_since >= resident]
        if not victims:
            return []  # next_deadline says when the first residency ends
        victim = min(victims, key=lambda e: e.last_used)
        self._switch = _Switch(victim, target, now + self.limits.drain_timeout_s)
        if victim.in_flight == 0:
            victim.state = State.SLEEPING
            return [Sleep(victim.name)]
        victim.state = State.DRAINING
        return []

    def _admit_all(self, engine: _Engine, now: float) -> list[Action]:
        """Everything that waited for this engine goes in together (a batch, in order)."""
        actions: list[Action] = [Admit(ticket, engine.name) for ticket, _ in engine.queue]
        engine.in_flight += len(engine.queue)
        if engine.queue:
            engine.last_used = now
        engine.queue.clear()
        return actions

    def _refuse_all(self, engine: _Engine, why: Why) -> list[Action]:
        after = self.limits.retry_after_s
        actions: list[Action] = [Refuse(t, engine.name, why, after) for t, _ in engine.queue]
        engine.queue.clear()
        return actions

    def _fail(self, engine: _Engine, why: Why, now: float) -> list[Action]:
        engine.cooling_until = now + self.limits.retry_after_s
        return self._refuse_all(engine, why)
