"""SIGINT, SIGTERM and SIGHUP as one exception, raised where the supervisor can unwind.

Spawning a child or starting Postgres is not interrupted halfway (we would lose track of
what was started): a signal that arrives then is held and raised right after. Once the
stack is stopping, signals are only counted, so a second Ctrl-C cannot cut the teardown
short and leave engines behind.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(BaseException):
    """Raised in the main thread when asked to stop. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int | None) -> int:
    """130 after Ctrl-C, as shells report an interrupted command; 0 after SIGTERM/SIGHUP,
    a supervisor's (systemd's, a test's) ordinary way to stop a service."""
    return 128 + signal.SIGINT if signum == signal.SIGINT else 0


class Signals:
    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = 0
        self._stopping = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def stopping(self) -> None:
        self._stopping = True

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        # Reached only when the block succeeded: a failure already unwinds.
        if self._deferring == 0 and self.received is not None and not self._stopping:
            raise Stop(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._stopping:
            sys.stderr.write("\nstill stopping the stack cleanly, one moment...\n")
            return
        if self._deferring:
            return
        raise Stop(signum)
