"""The token-bucket arithmetic, by hand-computed cases (no I/O, time passed in)."""

from __future__ import annotations

import math

import pytest

from gateway.limits.bucket import (
    Decision,
    Limits,
    evaluate,
    idle_after_s,
    never_fits,
    refill,
    remaining,
    reset_s,
    settle_tokens,
    wait_s,
)


def admit(
    limits: Limits,
    requests: float | None = None,
    tokens: float | None = None,
    elapsed_s: float = 0.0,
    cost: int = 0,
    in_flight: int = 0,
) -> Decision:
    return evaluate(
        limits,
        requests=requests,
        tokens=tokens,
        elapsed_s=elapsed_s,
        cost_tokens=cost,
        in_flight=in_flight,
    )


@pytest.mark.parametrize(
    ("level", "elapsed", "limit", "expected"),
    [
        (0.0, 3.0, 20, 1.0),  # 20/min refills one every 3 s
        (0.0, 1.5, 20, 0.5),
        (5.0, 0.0, 20, 5.0),
        (5.0, -2.0, 20, 5.0),  # a clock that stepped back adds nothing
        (19.0, 30.0, 20, 20.0),  # never above the limit
        (0.0, 60.0, 20, 20.0),  # a full minute refills all of it
        (-100.0, 6.0, 1000, 0.0),  # debt is repaid at the same rate
        (30.0, 0.0, 20, 20.0),  # a lowered limit clamps what was stored
        (0.0, 1.0, 600_000, 10_000.0),
    ],
)
def test_refill(level: float, elapsed: float, limit: int, expected: float) -> None:
    assert refill(level, elapsed, limit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("level", "cost", "limit", "expected"),
    [
        (0.0, 1, 20, 3.0),
        (0.5, 1, 20, 1.5),
        (1.0, 1, 20, 0.0),
        (1.0 - 1e-12, 1, 20, 0.0),  # rounding slack
        (200.0, 400, 1000, 12.0),  # 200 tokens short at 1000/min
        (-500.0, 100, 1000, 36.0),  # debt first, then the cost
        (0.0, 1001, 1000, math.inf),  # can never fit
    ],
)
def test_wait(level: float, cost: int, limit: int, expected: float) -> None:
    assert wait_s(level, cost, limit) == pytest.approx(expected)


def test_reset_and_remaining() -> None:
    assert reset_s(20.0, 20) == 0.0
    assert reset_s(0.0, 20) == pytest.approx(60.0)
    assert reset_s(19.0, 20) == pytest.approx(3.0)
    assert reset_s(-1000.0, 1000) == pytest.approx(120.0)
    assert remaining(19.7) == 19
    assert remaining(-3.0) == 0
    assert remaining(2.9999999999999) == 3  # slack, as in wait_s


def test_burst_is_exactly_the_limit() -> None:
    for rpm in (1, 3, 7, 20, 60, 997):
        limits = Limits(rpm=rpm)
        level: float | None = None
        admitted = 0
        for _ in range(rpm + 5):
            d = admit(limits, requests=level)
            if d.admitted:
                admitted += 1
                level = d.requests
        assert admitted == rpm


def test_refills_at_limit_over_60() -> None:
    limits = Limits(rpm=20)
    d = admit(limits, requests=0.0, elapsed_s=2.999)
    assert not d.admitted
    assert d.refused == "requests"
    assert d.retry_after_s == pytest.approx(0.001)
    d = admit(limits, requests=0.0, elapsed_s=3.0)
    assert d.admitted
    assert d.requests == pytest.approx(0.0)


def test_refused_takes_nothing() -> None:
    limits = Limits(rpm=20, tpm=1000, max_parallel=4)
    d = admit(limits, requests=10.0, tokens=100.0, cost=300)
    assert not d.admitted
    assert (d.refused, d.requests, d.tokens, d.in_flight) == ("tokens", 10.0, 100.0, 0)
    assert d.retry_after_s == pytest.approx(12.0)


def test_admitted_takes_one_request_its_tokens_and_a_slot() -> None:
    d = admit(Limits(rpm=20, tpm=1000, max_parallel=4), cost=300, in_flight=2)
    assert d.admitted
    assert (d.requests, d.tokens, d.in_flight) == (19.0, 700.0, 3)


def test_longest_wait_names_the_refusal() -> None:
    limits = Limits(rpm=20, tpm=1000, max_parallel=1)
    # requests: 3 s; tokens: (100 - 50) * 60 / 1000 = 3 s: a tie keeps the first.
    d = admit(limits, requests=0.0, tokens=50.0, cost=100, in_flight=1)
    assert d.refused == "requests"
    assert d.retry_after_s == pytest.approx(3.0)
    d = admit(limits, requests=0.0, tokens=0.0, cost=100, in_flight=1)
    assert d.refused == "tokens"
    assert d.retry_after_s == pytest.approx(6.0)
    # Only the slot is missing: a one-second hint.
    d = admit(limits, requests=5.0, tokens=500.0, cost=100, in_flight=1)
    assert (d.refused, d.retry_after_s) == ("parallel", 1.0)
    # Slot missing and requests 0.5 s away: the hint is the longer of the two.
    d = admit(limits, requests=0.9, cost=0, in_flight=1)
    assert (d.refused, d.retry_after_s) == ("parallel", 1.0)


def test_absent_limits_are_ignored() -> None:
    d = admit(Limits(tpm=100), requests=-50.0, cost=100)
    assert d.admitted
    assert d.tokens == 0.0
    assert admit(Limits(max_parallel=2), in_flight=1).admitted
    assert not admit(Limits(max_parallel=2), in_flight=2).admitted


def test_never_fits() -> None:
    assert never_fits(Limits(tpm=1000), 1000) is None
    assert never_fits(Limits(tpm=1000), 1001) == "tokens"
    assert never_fits(Limits(rpm=0), 0) == "requests"
    assert never_fits(Limits(max_parallel=0), 0) == "parallel"
    assert never_fits(Limits(rpm=5, max_parallel=5), 10**9) is None


def test_settle_corrects_the_reservation() -> None:
    # Reserved 400 of 1000 (600 left); the request used 100: 300 come back.
    assert settle_tokens(600.0, 0.0, 1000, 100 - 400) == 900.0
    # Refunds never overfill.
    assert settle_tokens(900.0, 30.0, 1000, -400) == 1000.0
    # Used 1500 on a 400 estimate: 1100 more, into debt.
    assert settle_tokens(600.0, 0.0, 1000, 1100) == -500.0
    # Debt then waits: 500 of debt plus a 100 cost at 1000/min is 36 s.
    d = admit(Limits(tpm=1000), tokens=-500.0, cost=100)
    assert d.retry_after_s == pytest.approx(36.0)
    # A state that expired meanwhile reads as full.
    assert settle_tokens(None, 0.0, 1000, 200) == 800.0


def test_idle_after() -> None:
    assert idle_after_s(Limits(rpm=20, tpm=1000), 19.0, 500.0) == pytest.approx(30.0)
    assert idle_after_s(Limits(rpm=20), 10.0, -1e9) == pytest.approx(30.0)
    assert idle_after_s(Limits(max_parallel=3), 0.0, 0.0) == 0.0
