"""The switching policy, scenario by scenario (pure: time is a number we pass in)."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.upstream.switching.policy import (
    Admit,
    Limits,
    Policy,
    Refuse,
    Sleep,
    State,
    Wake,
    Why,
)

LIMITS = Limits(
    max_awake=1,
    drain_timeout_s=30,
    min_residency_s=10,
    idle_sleep_s=0,
    queue_max=3,
    retry_after_s=5,
)


def policy(awake: str | None = "a", *, idle_sleep_s: float = 0) -> Policy:
    limits = dataclasses.replace(LIMITS, idle_sleep_s=idle_sleep_s)
    return Policy(["a", "b", "c"], limits, awake=frozenset({awake} if awake else ()), now=0)


def test_a_request_for_the_awake_engine_goes_straight_through() -> None:
    p = policy()
    ticket, actions = p.request("a", now=1)
    assert actions == [Admit(ticket, "a")]
    assert p.in_flight("a") == 1


def test_a_request_for_a_sleeping_engine_wakes_it_when_the_device_is_free() -> None:
    p = policy(awake=None)
    ticket, actions = p.request("b", now=1)
    assert actions == [Wake("b")]
    assert p.state("b") is State.WAKING and p.queued("b") == 1
    assert p.woke("b", True, now=3) == [Admit(ticket, "b")]
    assert p.state("b") is State.AWAKE and p.in_flight("b") == 1


def test_a_switch_drains_the_awake_engine_sleeps_it_then_wakes_the_target_in_order() -> None:
    p = policy()
    running, _ = p.request("a", now=11)
    first, actions = p.request("b", now=12)
    assert actions == [] and p.state("a") is State.DRAINING  # a is busy: it drains first
    second, _ = p.request("b", now=12.5)
    # New requests for the draining engine wait too, rather than extend the drain.
    late, actions = p.request("a", now=13)
    assert actions == [] and p.queued("a") == 1
    assert p.finished("a", now=14) == [Sleep("a")]
    assert p.state("a") is State.SLEEPING
    assert p.slept("a", True, now=15) == [Wake("b")]
    assert p.woke("b", True, now=17) == [Admit(first, "b"), Admit(second, "b")]
    assert p.state("a") is State.ASLEEP and p.queued("a") == 1
    assert running < first < second < late


def test_an_idle_awake_engine_sleeps_at_once_for_a_waiter() -> None:
    p = policy()
    _, actions = p.request("b", now=20)
    assert actions == [Sleep("a")]


def test_minimum_residency_holds_other_models_back_and_batches_them() -> None:
    p = policy()
    t1, actions = p.request("b", now=2)
    assert actions == [] and p.state("a") is State.AWAKE
    t2, _ = p.request("b", now=4)
    # Meanwhile the resident model keeps being served.
    t3, actions = p.request("a", now=5)
    assert actions == [Admit(t3, "a")]
    assert p.next_deadline() == 10
    assert p.tick(now=9.9) == []
    assert p.tick(now=10) == []  # a is busy with t3: it drains
    assert p.state("a") is State.DRAINING
    assert p.finished("a", now=11) == [Sleep("a")]
    assert p.slept("a", True, now=12) == [Wake("b")]
    assert p.woke("b", True, now=13) == [Admit(t1, "b"), Admit(t2, "b")]


def test_the_longest_waiter_decides_the_next_engine() -> None:
    p = policy()
    tc, _ = p.request("c", now=1)
    tb, _ = p.request("b", now=2)
    assert p.tick(now=10) == [Sleep("a")]
    assert p.slept("a", True, now=11) == [Wake("c")]
    assert p.woke("c", True, now=12) == [Admit(tc, "c")]
    assert p.queued("b") == 1 and tb > tc
    # b's turn comes after c's residency.
    assert p.next_deadline() == 22


def test_the_queue_is_bounded_per_model_with_a_retry_after() -> None:
    p = policy()
    for _ in range(3):
        p.request("b", now=1)
    ticket, actions = p.request("b", now=1)
    assert actions == [Refuse(ticket, "b", Why.QUEUE_FULL, 5)]
    # Another model has its own queue.
    _, actions = p.request("c", now=1)
    assert not any(isinstance(a, Refuse) for a in actions)


def test_a_drain_that_takes_too_long_is_called_off_and_never_cuts_requests() -> None:
    p = policy()
    p.request("a", now=11)
    waiter, _ = p.request("b", now=12)
    late, _ = p.request("a", now=13)
    assert p.next_deadline() == 42
    actions = p.tick(now=42)
    assert actions == [Admit(late, "a"), Refuse(waiter, "b", Why.DRAIN_TIMEOUT, 5)]
    assert p.state("a") is State.AWAKE and p.in_flight("a") == 2
    # The engine stays for a fresh residency before another drain is tried.
    _again, actions = p.request("b", now=43)
    assert actions == [] and p.next_deadline() == 52


def test_a_failed_wake_refuses_the_waiters_cools_down_then_retries() -> None:
    p = policy(awake=None)
    t1, _ = p.request("b", now=1)
    t2, _ = p.request("b", now=1)
    assert p.woke("b", False, now=2) == [
        Refuse(t1, "b", Why.WAKE_FAILED, 5),
        Refuse(t2, "b", Why.WAKE_FAILED, 5),
    ]
    assert p.state("b") is State.ASLEEP
    t3, actions = p.request("b", now=3)
    assert actions == [Refuse(t3, "b", Why.COOLING_DOWN, 4)]
    # Another model is not held back by b's failure.
    _t4, actions = p.request("c", now=3)
    assert actions == [Wake("c")]
    p.woke("c", True, now=4)
    p.finished("c", now=4)
    # After the cool-down, b is tried again.
    _, actions = p.request("b", now=20)
    assert actions == [Sleep("c")]
    assert p.slept("c", True, now=21) == [Wake("b")]


def test_a_failed_sleep_keeps_the_engine_awake_and_refuses_the_target_waiters() -> None:
    p = policy()
    waiter, actions = p.request("b", now=20)
    assert actions == [Sleep("a")]
    late, _ = p.request("a", now=20.5)
    assert p.slept("a", False, now=21) == [
        Admit(late, "a"),
        Refuse(waiter, "b", Why.SLEEP_FAILED, 5),
    ]
    assert p.state("a") is State.AWAKE and p.state("b") is State.ASLEEP


def test_an_engine_lost_while_waking_refuses_its_waiters() -> None:
    p = policy(awake=None)
    t1, _ = p.request("b", now=1)
    assert p.lost("b", now=2) == [Refuse(t1, "b", Why.LOST, 5)]
    assert p.state("b") is State.ASLEEP
    # The late report of the dead wake changes nothing.
    assert p.woke("b", True, now=3) == [] and p.state("b") is State.ASLEEP


def test_an_engine_lost_while_draining_frees_the_device_for_the_target() -> None:
    p = policy()
    p.request("a", now=11)
    waiter, _ = p.request("b", now=12)
    assert p.state("a") is State.DRAINING
    assert p.lost("a", now=13) == [Wake("b")]
    assert p.finished("a", now=13) == []  # its request failed with it
    assert p.woke("b", True, now=14) == [Admit(waiter, "b")]


def test_an_awake_engine_lost_is_woken_again_by_the_next_request() -> None:
    p = policy()
    assert p.lost("a", now=1) == []
    ticket, actions = p.request("a", now=2)
    assert actions == [Wake("a")]
    assert p.woke("a", True, now=3) == [Admit(ticket, "a")]


def test_cancelled_waiters_leave_the_queue_and_an_unneeded_drain_is_called_off() -> None:
    p = policy()
    p.request("a", now=11)
    waiter, _ = p.request("b", now=12)
    late, _ = p.request("a", now=12.5)
    assert p.state("a") is State.DRAINING
    removed, actions = p.cancel(waiter, "b", now=13)
    assert removed and actions == [Admit(late, "a")]
    assert p.state("a") is State.AWAKE and p.queued("b") == 0
    # A ticket no longer waiting is not the policy's to cancel.
    assert p.cancel(late, "a", now=14) == (False, [])


def test_an_idle_engine_is_put_to_sleep() -> None:
    p = policy(idle_sleep_s=60)
    _ticket, _ = p.request("a", now=1)
    p.finished("a", now=5)
    assert p.next_deadline() == 65
    assert p.tick(now=64) == []
    assert p.tick(now=65) == [Sleep("a")]
    assert p.slept("a", True, now=66) == []
    assert p.state("a") is State.ASLEEP and p.next_deadline() is None


def test_no_idle_sleep_while_requests_run() -> None:
    p = policy(idle_sleep_s=60)
    p.request("a", now=1)
    assert p.tick(now=500) == []


def test_two_may_be_awake_when_the_group_allows_it() -> None:
    p = Policy(["a", "b", "c"], Limits(max_awake=2, min_residency_s=0), awake=frozenset({"a"}))
    tb, actions = p.request("b", now=1)
    assert actions == [Wake("b")]
    assert p.woke("b", True, now=2) == [Admit(tb, "b")]
    p.request("a", now=3)
    # c takes the place of the least recently used, b, once b is idle.
    tc, actions = p.request("c", now=4)
    assert p.state("b") is State.DRAINING and actions == []
    assert p.finished("b", now=5) == [Sleep("b")]
    assert p.slept("b", True, now=6) == [Wake("c")]
    assert p.woke("c", True, now=7) == [Admit(tc, "c")]


def test_more_engines_awake_at_start_than_allowed_is_refused() -> None:
    with pytest.raises(ValueError, match="more engines awake"):
        Policy(["a", "b"], LIMITS, awake=frozenset({"a", "b"}))


def test_a_target_lost_while_the_holder_sleeps_lets_the_sleep_finish_for_nobody() -> None:
    p = policy()
    waiter, actions = p.request("b", now=20)
    assert actions == [Sleep("a")]
    assert p.lost("b", now=21) == [Refuse(waiter, "b", Why.LOST, 5)]
    assert p.slept("a", True, now=22) == []
    assert p.state("a") is State.ASLEEP and p.state("b") is State.ASLEEP
