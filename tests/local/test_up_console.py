"""Progress output: a spinner on a terminal, a line every few seconds anywhere else."""

from __future__ import annotations

import io

from gateway.local.console import Console


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_carry_the_seconds_since_start() -> None:
    out, clock = io.StringIO(), Clock()
    console = Console(out, tty=False, clock=clock)
    clock.now += 61.6
    console.step("engine ready")
    assert out.getvalue() == "[   62 s] engine ready\n"


def test_status_into_a_pipe_is_a_plain_line_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    console = Console(out, tty=False, every_s=10, clock=clock)
    for _ in range(40):  # 20 s of polling every 0.5 s
        clock.now += 0.5
        console.status("waiting")
    lines = out.getvalue().splitlines()
    assert lines == ["[   10 s] waiting", "[   20 s] waiting"]
    assert "\r" not in out.getvalue()


def test_status_on_a_terminal_spins_in_place_and_steps_clear_it() -> None:
    out, clock = io.StringIO(), Clock()
    console = Console(out, tty=True, clock=clock)
    console.status("waiting")
    console.status("waiting")
    console.step("ready")
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1
    assert text.endswith("\r\x1b[K[    0 s] ready\n")
