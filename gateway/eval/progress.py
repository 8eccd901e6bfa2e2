"""A progress line on stderr: redrawn in place on a terminal, a few plain lines otherwise
(CI logs), never on stdout (which carries the table or the JSON)."""

from __future__ import annotations

import sys
from typing import TextIO

_WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._label = ""
        self._total = self._done = self._failed = 0
        self._reported = -1

    def start(self, label: str, total: int) -> None:
        self._label, self._total, self._done, self._failed = label, total, 0, 0
        self._reported = -1
        self._draw()

    def step(self, passed: bool) -> None:
        self._done += 1
        self._failed += int(not passed)
        self._draw()

    def note(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._total:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        total = max(1, self._total)
        text = f"{self._label}: {self._done}/{self._total} cases, {self._failed} failed"
        if self.tty:
            filled = _WIDTH * self._done // total
            bar = "#" * filled + "-" * (_WIDTH - filled)
            self.stream.write(f"\r\x1b[K[{bar}] {text}")
        else:
            quarter = 4 * self._done // total
            if quarter == self._reported:
                return
            self._reported = quarter
            self.stream.write(text + "\n")
        self.stream.flush()
