"""Limits kept in this process: the backend without Redis, and the fallback while it is down.

Every method is synchronous: with no await between reading and writing a key's state, the
event loop cannot interleave two admissions, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.limits.bucket import (
    Decision,
    Limits,
    evaluate,
    idle_after_s,
    refill,
    settle_tokens,
)

# States that are back to "fresh key" are dropped at most this often (a sweep is O(keys)).
_SWEEP_INTERVAL_S = 60.0


@dataclass(slots=True)
class _KeyState:
    requests: float | None
    tokens: float | None
    updated: float
    # request id -> lease expiry: a request whose settle never comes frees its slot anyway.
    slots: dict[str, float] = field(default_factory=dict)
    # When the buckets are full and the leases expired, i.e. the state can be forgotten.
    idle_at: float = 0.0


class MemoryBackend:
    name = "memory"

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_states: int = 100_000
    ) -> None:
        self._clock = clock
        self._states: dict[str, _KeyState] = {}
        self._next_sweep = 0.0
        # A front end may name any number of end users, each a state: past this many the
        # oldest state is forgotten (a fresh bucket for it), so memory stays bounded. The
        # key's own state is one more among them and is refreshed by every request.
        self._max_states = max_states

    def __len__(self) -> int:
        return len(self._states)

    def admit(
        self,
        key_id: str,
        limits: Limits,
        request_id: str,
        cost_tokens: int,
        lease_s: float,
        now: float | None = None,
    ) -> Decision:
        now = self._clock() if now is None else now
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._states.get(key_id)
        if state is None:
            state = self._new_state(key_id, now)
        slots = state.slots
        # Expired leases only matter when they would make the key look full.
        if limits.max_parallel is not None and len(slots) >= limits.max_parallel:
            for rid in [rid for rid, expiry in slots.items() if expiry <= now]:
                del slots[rid]
        decision = evaluate(
            limits,
            requests=state.requests,
            tokens=state.tokens,
            elapsed_s=now - state.updated,
            cost_tokens=cost_tokens,
            in_flight=len(slots),
        )
        if decision.admitted:
            state.requests = decision.requests if limits.rpm is not None else None
            state.tokens = decision.tokens if limits.tpm is not None else None
            state.updated = now
            idle_at = now + idle_after_s(limits, decision.requests, decision.tokens)
            if limits.max_parallel is not None:
                slots[request_id] = now + lease_s
                idle_at = max(idle_at, now + lease_s)
            state.idle_at = max(state.idle_at, idle_at)
        return decision

    def settle(
        self,
        key_id: str,
        limits: Limits,
        request_id: str,
        delta_tokens: int,
        now: float | None = None,
    ) -> None:
        state = self._states.get(key_id)
        if state is not None:
            state.slots.pop(request_id, None)
        if limits.tpm is None or delta_tokens == 0:
            return
        now = self._clock() if now is None else now
        if state is None:
            # Swept while the request ran: the debt still counts, against a fresh bucket
            # (as in Redis, where the hash may have expired meanwhile).
            state = self._new_state(key_id, now)
        elapsed = now - state.updated
        if limits.rpm is not None and state.requests is not None:
            # Both buckets share one timestamp, so bring the other one forward too.
            state.requests = refill(state.requests, elapsed, limits.rpm)
        state.tokens = settle_tokens(state.tokens, elapsed, limits.tpm, delta_tokens)
        state.updated = now
        idle = idle_after_s(limits, state.requests or 0.0, state.tokens)
        state.idle_at = max(state.idle_at, now + idle)

    def renew(
        self, key_id: str, request_ids: list[str], lease_s: float, now: float | None = None
    ) -> int:
        """Extend the leases of these request ids that are still held (never revive one)."""
        state = self._states.get(key_id)
        if state is None:
            return 0
        now = self._clock() if now is None else now
        expiry = now + lease_s
        slots = state.slots
        renewed = 0
        for request_id in request_ids:
            if request_id in slots:
                slots[request_id] = expiry
                renewed += 1
        if renewed:
            state.idle_at = max(state.idle_at, expiry)
        return renewed

    def in_flight(self, key_id: str) -> int:
        state = self._states.get(key_id)
        return 0 if state is None else len(state.slots)

    def _new_state(self, key_id: str, now: float) -> _KeyState:
        states = self._states
        if len(states) >= self._max_states:
            self._sweep(now)
            while len(states) >= self._max_states:
                # Insertion order: the state created longest ago goes first.
                del states[next(iter(states))]
        state = states[key_id] = _KeyState(None, None, now)
        return state

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_INTERVAL_S
        for key_id in [k for k, s in self._states.items() if s.idle_at <= now]:
            del self._states[key_id]
