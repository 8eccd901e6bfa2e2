"""The last switches of the engine groups, for the console and `GET /admin/engines`:
when, from which model to which, how long, how many requests waited, and how it ended.

A bounded record in memory (per process; switching runs in one worker): enough to see
what the box has been doing lately, not an audit log. A switch is a sleep followed by the
wake it made room for (one record), a wake into a free place, or a sleep for nobody (an
idle engine, or a sleep that failed).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

KEPT = 20


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    group: str
    at: float  # wall-clock time (Unix seconds) it ended
    from_model: str | None  # None: the device had room
    to_model: str | None  # None: an engine went to sleep for nobody
    seconds: float  # from the first sleep or wake call to the end of the last
    waited: int  # requests waiting for the target when it ended
    ok: bool

    def view(self) -> dict[str, Any]:
        found = asdict(self)
        found["seconds"] = round(self.seconds, 3)
        return found


class SwitchHistory:
    def __init__(self, kept: int = KEPT, wall: Callable[[], float] = time.time) -> None:
        self._records: deque[SwitchRecord] = deque(maxlen=kept)
        self._wall = wall
        # A wake that follows a sleep in one switch: target url -> (model that slept, start).
        self._handover: dict[str, tuple[str, float]] = {}

    def slept(
        self, group: str, model: str, started: float, now: float, ok: bool, woken: list[str]
    ) -> None:
        """A sleep ended (`started`, `now`: the controller's clock); `woken`: the engines
        whose wake it started."""
        for url in woken:
            self._handover[url] = (model, started)
        if not ok or not woken:
            self._add(SwitchRecord(group, self._wall(), model, None, now - started, 0, ok))

    def woke(
        self, group: str, url: str, model: str, started: float, now: float, ok: bool, waited: int
    ) -> None:
        came_from, since = self._handover.pop(url, (None, started))
        self._add(SwitchRecord(group, self._wall(), came_from, model, now - since, waited, ok))

    def latest(self) -> list[SwitchRecord]:
        """Newest first."""
        return list(reversed(self._records))

    def _add(self, record: SwitchRecord) -> None:
        self._records.append(record)
