"""When a body is too slow to keep waiting for: the pure rules, with time passed in."""

from __future__ import annotations

from gateway.config import Settings
from gateway.http.body_pace import Pace

PACE = Pace(idle_timeout_s=60, min_bytes_per_s=1024, grace_s=60)


def test_a_stall_is_cut_at_the_idle_timeout() -> None:
    assert PACE.too_slow(received=10_000, waited_s=59.9, idle_s=59.9) is None
    assert "no data arrived for 60 s" in (PACE.too_slow(10_000, 60.0, 60.0) or "")


def test_a_trickle_under_the_idle_timeout_is_cut_by_the_rate_rule() -> None:
    # One byte every 59 s never trips the idle rule; after the grace its average does.
    received, waited = 0, 0.0
    verdict = None
    while verdict is None and waited < 3600:
        waited += 59.0
        verdict = PACE.too_slow(received, waited, idle_s=58.9)
        received += 1
    assert verdict is not None and "bytes per second" in verdict
    assert waited <= 60 + 59  # within one gap after the grace


def test_the_rate_rule_waits_for_the_grace_period() -> None:
    # A client that needs a while to start (TLS, a slow first read) is not judged early.
    assert PACE.too_slow(received=0, waited_s=59.0, idle_s=5.0) is None
    assert PACE.too_slow(received=0, waited_s=61.0, idle_s=5.0) is not None


def test_an_honest_upload_over_a_slow_home_link_is_never_cut() -> None:
    # The defaults against the largest upload (512 MiB) at 20 KB/s (160 kbit/s): ~7.5 hours.
    settings = Settings()
    pace = Pace(
        settings.body_idle_timeout_s, settings.body_min_bytes_per_s, settings.body_rate_grace_s
    )
    rate, total = 20_000, settings.max_upload_bytes
    seconds = 0.0
    while rate * seconds < total:
        seconds += 1.0
        # Data arrives continuously; the longest pause between TCP segments is well under 1 s.
        assert pace.too_slow(int(rate * seconds), seconds, idle_s=1.0) is None


def test_a_zero_rate_turns_the_rate_rule_off() -> None:
    pace = Pace(idle_timeout_s=60, min_bytes_per_s=0, grace_s=1)
    assert pace.too_slow(received=0, waited_s=10_000, idle_s=59) is None


def test_sweeps_run_often_enough_for_short_timeouts() -> None:
    assert Pace(60, 1024, 60).check_every_s == 1.0
    assert Pace(0.4, 1024, 60).check_every_s == 0.1
    assert Pace(0.001, 1024, 60).check_every_s == 0.05  # never a busy loop
