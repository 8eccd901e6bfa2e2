"""Scores: pass rates per metric (a case's category), and `--require` thresholds. Pure."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

OVERALL = "overall"
# The built-in suite's metrics, in the table's order; users' own categories follow.
METRIC_ORDER = ("json_valid", "json_valid_guided", "tool_calls", "instructions", "accuracy")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_REQUIREMENT = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Attempt:
    """One run of one case against one model."""

    case_id: str
    category: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    output: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    # The engine refused the request as it is configured (e.g. tools without a tool-call
    # parser): the model was not measured, so the attempt counts in no rate.
    refused: bool = False


@dataclass(frozen=True)
class Rate:
    passed: int
    total: int

    @property
    def value(self) -> float:
        return self.passed / self.total if self.total else 0.0


def rates(attempts: Iterable[Attempt]) -> dict[str, Rate]:
    """Pass rate per category and overall; every attempt counts (`--repeat` included)."""
    counts: dict[str, list[int]] = {}
    for a in attempts:
        if a.refused:
            continue
        for metric in (a.category, OVERALL):
            passed_total = counts.setdefault(metric, [0, 0])
            passed_total[0] += int(a.passed)
            passed_total[1] += 1
    return {m: Rate(p, t) for m, (p, t) in counts.items()}


def not_measured(attempts: Iterable[Attempt]) -> list[str]:
    """Categories whose every attempt the engine refused."""
    attempts = list(attempts)
    refused = {a.category for a in attempts if a.refused}
    return sorted(refused - {a.category for a in attempts if not a.refused})


def metric_order(metrics: Iterable[str]) -> list[str]:
    found = set(metrics)
    known = [m for m in METRIC_ORDER if m in found]
    rest = sorted(found - set(METRIC_ORDER) - {OVERALL})
    return known + rest + ([OVERALL] if OVERALL in found else [])


@dataclass(frozen=True)
class Requirement:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def missed(self, summary: Mapping[str, float]) -> str | None:
        """Why the summary misses this requirement, or None when it holds."""
        if self.metric not in summary:
            return f"{self}: {self.metric} was not measured"
        got = summary[self.metric]
        if _OPS[self.op](got, self.threshold):
            return None
        return f"{self}: got {got:.3g}"


def parse_requirement(text: str) -> Requirement:
    found = _REQUIREMENT.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not METRIC OP NUMBER, e.g. json_valid>=0.95")
    metric, op, number = found.groups()
    return Requirement(metric, op, float(number))
