"""`gateway up`'s console: a line per stage with the seconds since start, and while engines
boot a status line that spins on a terminal (or repeats every few seconds into a pipe or a
log file, where carriage returns would only make a mess)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Console:
    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self._frame = 0
        self._next_status = self.started + every_s
        self._status_shown = False

    def elapsed(self) -> float:
        return self.clock() - self.started

    def step(self, text: str) -> None:
        self._clear_status()
        self._write(f"[{self.elapsed():5.0f} s] {text}\n")

    def status(self, text: str) -> None:
        """Called often while waiting; shows `text` as often as suits the output."""
        if self.tty:
            self._frame = (self._frame + 1) % len(SPINNER)
            line = f"[{self.elapsed():5.0f} s] {SPINNER[self._frame]} {text}"
            # A line wider than the terminal wraps, and "\r" could then only redraw its tail.
            width = shutil.get_terminal_size((100, 24)).columns - 1
            self._write("\r" + line[:width] + "\x1b[K")
            self._status_shown = True
        elif self.clock() >= self._next_status:
            self._next_status = self.clock() + self.every_s
            self._write(f"[{self.elapsed():5.0f} s] {text}\n")

    def text(self, text: str) -> None:
        self._clear_status()
        self._write(text if text.endswith("\n") else text + "\n")

    def _clear_status(self) -> None:
        if self._status_shown:
            self._write("\r\x1b[K")
            self._status_shown = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
