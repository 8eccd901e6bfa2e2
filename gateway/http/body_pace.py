"""When a request body arrives too slowly to keep waiting for it. Pure: no clock, no I/O.

Two rules, both counted only over the time the gateway spent waiting for the client (time
the gateway itself spends on a part, e.g. writing it to Postgres, is never held against
the client):
- idle: nothing arrived for `idle_timeout_s` (nginx's `client_body_timeout`);
- rate: after `grace_s` of waiting, fewer than `min_bytes_per_s` on average. The idle rule
  alone lets a client trickle one byte just under the timeout forever; this one ends a
  trickle within about `grace_s`, while an honest upload over the slowest home link
  (tens of KB/s) is far above it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pace:
    idle_timeout_s: float
    min_bytes_per_s: float
    grace_s: float

    def too_slow(self, received: int, waited_s: float, idle_s: float) -> str | None:
        """Why to stop waiting for this body, or None to keep waiting.

        `received`: body bytes so far; `waited_s`: total time spent waiting for them;
        `idle_s`: time since the current wait began (no byte arrived meanwhile).
        """
        if idle_s >= self.idle_timeout_s:
            return f"no data arrived for {self.idle_timeout_s:g} s"
        if waited_s >= self.grace_s and received < self.min_bytes_per_s * waited_s:
            return (
                f"it averaged under {self.min_bytes_per_s:g} bytes per second "
                f"after {self.grace_s:g} s"
            )
        return None

    @property
    def check_every_s(self) -> float:
        """How often in-flight bodies are checked: often enough for the shortest rule."""
        return max(0.05, min(1.0, self.idle_timeout_s / 4, self.grace_s / 4))
