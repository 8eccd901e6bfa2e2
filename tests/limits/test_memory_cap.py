"""The in-memory limiter holds a bounded number of states (keys and end users)."""

from __future__ import annotations

from gateway.limits.bucket import Limits
from gateway.limits.memory import MemoryBackend


def test_memory_states_are_capped_oldest_first() -> None:
    # A front end naming endless new end users: each is a state, the total stays bounded.
    now = [0.0]
    memory = MemoryBackend(clock=lambda: now[0], max_states=3)
    one = Limits(rpm=1)
    for name in ("a", "b", "c", "d"):
        assert memory.admit(name, one, f"r-{name}", 0, 30.0).admitted
    assert len(memory) == 3
    # "a" was forgotten (a fresh bucket); "d", still held, keeps its spent request.
    assert memory.admit("a", one, "r-a2", 0, 30.0).admitted
    assert not memory.admit("d", one, "r-d2", 0, 30.0).admitted
