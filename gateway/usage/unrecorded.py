"""Proxied requests whose usage is not recorded yet.

A graceful stop that runs out of time cancels the requests still running and, without
waiting for them, shuts the app down. Each cancelled request records its usage on its
way out; the lifespan waits for that (briefly) before the usage writer's final flush, so
those events are written rather than dropped.
"""

from __future__ import annotations

import asyncio
import contextlib


class Unrecorded:
    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None  # made only when someone waits

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Until every request has recorded its usage, or `timeout_s`; True if all did."""
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        return self.count == 0
