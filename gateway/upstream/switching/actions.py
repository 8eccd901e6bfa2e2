"""The words of the switching policy (gateway.upstream.switching.policy): engine states,
its limits, the actions it asks for and why it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    ASLEEP = "asleep"
    WAKING = "waking"
    AWAKE = "awake"
    DRAINING = "draining"  # awake, finishing its requests, taking no new ones
    SLEEPING = "sleeping"


class Why(StrEnum):
    """Why a request was refused."""

    QUEUE_FULL = "queue_full"
    WAKE_FAILED = "wake_failed"
    SLEEP_FAILED = "sleep_failed"  # the engine holding the device would not let go
    DRAIN_TIMEOUT = "drain_timeout"  # the engine holding the device stayed busy too long
    COOLING_DOWN = "cooling_down"  # a recent switch to this engine failed
    LOST = "lost"  # the engine went away while the request waited


@dataclass(frozen=True, slots=True)
class Limits:
    max_awake: int = 1
    drain_timeout_s: float = 60.0
    min_residency_s: float = 30.0
    idle_sleep_s: float = 0.0  # 0: never
    queue_max: int = 32
    retry_after_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Admit:
    ticket: int
    engine: str


@dataclass(frozen=True, slots=True)
class Refuse:
    ticket: int
    engine: str
    why: Why
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Sleep:
    engine: str


@dataclass(frozen=True, slots=True)
class Wake:
    engine: str


Action = Admit | Refuse | Sleep | Wake
