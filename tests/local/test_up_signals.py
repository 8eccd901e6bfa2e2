"""Signals become one exception, held while a child is being spawned, ignored while stopping."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from gateway.local.signals import Signals, Stop, exit_code


@pytest.fixture
def signals() -> Iterator[Signals]:
    handler = Signals()
    handler.install()
    yield handler
    handler.restore()


def test_a_signal_raises_stop(signals: Signals) -> None:
    with pytest.raises(Stop) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM


def test_a_signal_during_a_spawn_is_raised_after_it(signals: Signals) -> None:
    done = []
    with pytest.raises(Stop), signals.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("spawned")  # not interrupted halfway
    assert done == ["spawned"]
    assert signals.received == signal.SIGINT


def test_signals_while_stopping_are_only_remembered(
    signals: Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    signals.stopping()
    os.kill(os.getpid(), signal.SIGINT)
    assert signals.received == signal.SIGINT
    assert "still stopping" in capsys.readouterr().err


def test_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    handler = Signals()
    handler.install()
    handler.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_exit_codes() -> None:
    assert exit_code(signal.SIGINT) == 130
    assert exit_code(signal.SIGTERM) == 0
    assert exit_code(signal.SIGHUP) == 0
    assert exit_code(None) == 0
