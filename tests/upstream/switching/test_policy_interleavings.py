"""The switching policy under random interleavings of requests, completions, cancels,
time, failing wakes and sleeps, and dying engines, checked against a model of the device.

Each seed is a reproducible run; a failure names its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from gateway.upstream.switching.policy import (
    Action,
    Admit,
    Limits,
    Policy,
    Refuse,
    Sleep,
    State,
    Wake,
)

ENGINES = ["a", "b", "c"]


@dataclass
class Device:
    """What really happens: which engines hold the device, what runs where."""

    limits: Limits
    on: set[str] = field(default_factory=set)
    running: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENGINES, 0))
    waiting: dict[int, str] = field(default_factory=dict)
    admitted: dict[str, list[int]] = field(default_factory=lambda: {e: [] for e in ENGINES})
    pending: list[Sleep | Wake] = field(default_factory=list)

    def apply(self, policy: Policy, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Admit):
                assert self.waiting.pop(action.ticket) == action.engine
                assert action.engine in self.on, "admitted to an engine that is not awake"
                # (a drain may follow in the same breath: the batch still runs to the end)
                assert policy.state(action.engine) in (State.AWAKE, State.DRAINING)
                self.running[action.engine] += 1
                self.admitted[action.engine].append(action.ticket)
            elif isinstance(action, Refuse):
                assert self.waiting.pop(action.ticket) == action.engine
                assert action.retry_after_s > 0
            elif isinstance(action, Sleep):
                assert self.running[action.engine] == 0, "a running request would be cut"
                assert action.engine in self.on
                self.pending.append(action)
            else:
                assert len(self.on) < self.limits.max_awake, "woke beyond the device budget"
                assert action.engine not in self.on
                self.pending.append(action)

    def check(self, policy: Policy) -> None:
        assert len(self.on) <= self.limits.max_awake
        holding = [e for e in ENGINES if policy.state(e) is not State.ASLEEP]
        assert len(holding) <= self.limits.max_awake
        for engine in self.on:  # the policy never believes a busy device is free
            assert policy.state(engine) is not State.ASLEEP
        for engine in ENGINES:
            assert policy.in_flight(engine) == self.running[engine]
            assert policy.queued(engine) <= self.limits.queue_max
            # First come, first served within a model.
            assert self.admitted[engine] == sorted(self.admitted[engine])
        assert sum(policy.queued(e) for e in ENGINES) == len(self.waiting)


def step(rng: random.Random, policy: Policy, device: Device, now: float) -> float:
    roll = rng.random()
    if roll < 0.35:
        engine = rng.choice(ENGINES)
        ticket, actions = policy.request(engine, now)
        device.waiting[ticket] = engine
        device.apply(policy, actions)
    elif roll < 0.55:
        busy = [e for e in ENGINES if device.running[e]]
        if busy:
            engine = rng.choice(busy)
            device.running[engine] -= 1
            device.apply(policy, policy.finished(engine, now))
    elif roll < 0.6 and device.waiting:
        ticket = rng.choice(sorted(device.waiting))
        engine = device.waiting.pop(ticket)
        removed, actions = policy.cancel(ticket, engine, now)
        assert removed
        device.apply(policy, actions)
    elif roll < 0.8 and device.pending:
        done = device.pending.pop(rng.randrange(len(device.pending)))
        ok = rng.random() < 0.85
        if isinstance(done, Sleep):
            if ok:
                device.on.discard(done.engine)
            device.apply(policy, policy.slept(done.engine, ok, now))
        else:
            if ok:
                device.on.add(done.engine)
            device.apply(policy, policy.woke(done.engine, ok, now))
    elif roll < 0.82:
        engine = rng.choice(ENGINES)  # its process dies; what it ran fails
        device.on.discard(engine)
        for late in [p for p in device.pending if p.engine == engine]:
            device.pending.remove(late)  # its report comes late and changes nothing
            report = policy.slept if isinstance(late, Sleep) else policy.woke
            lost_actions = policy.lost(engine, now)
            assert report(engine, True, now) == []
            device.apply(policy, lost_actions)
            break
        else:
            device.apply(policy, policy.lost(engine, now))
    else:
        now += rng.choice([0.1, 1, 5, 12, 40])
        device.apply(policy, policy.tick(now))
    device.check(policy)
    return now


def settle(policy: Policy, device: Device, now: float) -> None:
    """With nothing failing any more, every waiting request is answered."""
    for _ in range(500):
        if not device.waiting and not device.pending:
            return
        for engine in ENGINES:
            while device.running[engine]:
                device.running[engine] -= 1
                device.apply(policy, policy.finished(engine, now))
        while device.pending:
            done = device.pending.pop(0)
            if isinstance(done, Sleep):
                device.on.discard(done.engine)
                device.apply(policy, policy.slept(done.engine, True, now))
            else:
                device.on.add(done.engine)
                device.apply(policy, policy.woke(done.engine, True, now))
        deadline = policy.next_deadline()
        now = max(now + 1, deadline if deadline is not None else now + 1)
        device.apply(policy, policy.tick(now))
        device.check(policy)
    raise AssertionError(f"requests still waiting: {device.waiting}")


@pytest.mark.parametrize("max_awake", [1, 2])
@pytest.mark.parametrize("idle_sleep_s", [0, 30])
def test_random_interleavings_keep_every_invariant(max_awake: int, idle_sleep_s: float) -> None:
    for seed in range(150):
        rng = random.Random(seed)
        limits = Limits(
            max_awake=max_awake,
            drain_timeout_s=rng.choice([5, 30]),
            min_residency_s=rng.choice([0, 10]),
            idle_sleep_s=idle_sleep_s,
            queue_max=rng.choice([1, 4]),
            retry_after_s=3,
        )
        awake = frozenset(rng.sample(ENGINES, rng.randint(0, max_awake)))
        policy = Policy(ENGINES, limits, awake=awake)
        device = Device(limits, on=set(awake))
        now = 0.0
        try:
            for _ in range(300):
                now = step(rng, policy, device, now)
            settle(policy, device, now)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc


def test_alternating_requests_all_get_served_without_thrashing() -> None:
    """Two models asked in turn: every request is served, and requests that arrive
    together are served by one wake each rather than one switch per request."""
    limits = Limits(min_residency_s=10, drain_timeout_s=60, queue_max=100)
    policy = Policy(["a", "b"], limits, awake=frozenset({"a"}))
    device = Device(limits, on={"a"})
    wakes, now = 0, 0.0
    for i in range(40):
        ticket, actions = policy.request("ab"[i % 2], now)
        device.waiting[ticket] = "ab"[i % 2]
        device.apply(policy, actions)
        now += 0.5
    while device.waiting or device.pending:
        for engine in "ab":
            while device.running[engine]:
                device.running[engine] -= 1
                device.apply(policy, policy.finished(engine, now))
        while device.pending:
            done = device.pending.pop(0)
            if isinstance(done, Wake):
                wakes += 1
                device.on.add(done.engine)
                device.apply(policy, policy.woke(done.engine, True, now))
            else:
                device.on.discard(done.engine)
                device.apply(policy, policy.slept(done.engine, True, now))
        deadline = policy.next_deadline()
        now = deadline if deadline is not None else now + 1
        device.apply(policy, policy.tick(now))
    assert sum(len(t) for t in device.admitted.values()) == 40
    # b wakes once for all its requests; a, drained after its residency, once for the
    # requests that came meanwhile: two switches for forty alternating requests.
    assert wakes == 2
