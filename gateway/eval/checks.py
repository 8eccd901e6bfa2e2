"""Checkers: pure functions of a model's answer, each saying why it failed (or None).

Types (the `type` field of a check in a case file):
- `json_schema` {schema}: the whole answer is JSON valid against the schema
  (JSON Schema 2020-12, validated with the `jsonschema` library).
- `exact` {value, ignore_case?}: the answer, stripped, equals value.
- `contains` / `not_contains` {value, ignore_case?}: substring present / absent.
- `regex` {pattern, full?}: re.search (re.fullmatch with full) on the stripped answer.
- `max_words` {value}: at most that many words.
- `tool_call` {name, schema?}: the model called tool `name`, arguments valid against schema.
- `number` {value, tolerance?}: the last number in the answer is within tolerance (default 0).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


@dataclass(frozen=True)
class Answer:
    """What a model said: its text and the tool calls it made (name, raw JSON arguments)."""

    text: str
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    kind: str
    spec: dict[str, Any]
    run: Callable[[Answer], str | None] = field(compare=False, repr=False)

    def __call__(self, answer: Answer) -> str | None:
        return self.run(answer)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _validator(schema: Any, where: str) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: `schema` must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"{where}: invalid JSON Schema: {exc.message}") from None
    return Draft202012Validator(schema)


def _schema_failure(validator: Draft202012Validator, value: Any) -> str | None:
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:200]}"


def _json_schema(spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    validator = _validator(spec.get("schema"), "json_schema")

    def run(answer: Answer) -> str | None:
        try:
            value = orjson.loads(answer.text.strip())
        except orjson.JSONDecodeError:
            return f"not valid JSON: {_short(answer.text.strip())}"
        failure = _schema_failure(validator, value)
        return None if failure is None else f"JSON does not match the schema {failure}"

    return run


def _string(spec: dict[str, Any], name: str) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a non-empty string")
    return value


def _text_check(kind: str, spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    value = _string(spec, "value")
    fold = bool(spec.get("ignore_case", False))

    def norm(s: str) -> str:
        return s.casefold() if fold else s

    def run(answer: Answer) -> str | None:
        text = answer.text.strip()
        if kind == "exact" and norm(text) != norm(value):
            return f"expected exactly {_short(value)}, got {_short(text)}"
        if kind == "contains" and norm(value) not in norm(text):
            return f"does not contain {_short(value)}"
        if kind == "not_contains" and norm(value) in norm(text):
            return f"contains {_short(value)}"
        return None

    return run


def _regex(spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    pattern = _string(spec, "pattern")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    full = bool(spec.get("full", False))

    def run(answer: Answer) -> str | None:
        text = answer.text.strip()
        found = compiled.fullmatch(text) if full else compiled.search(text)
        return None if found else f"does not match /{pattern}/: {_short(text)}"

    return run


def _positive_int(spec: dict[str, Any], name: str) -> int:
    value = spec.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer")
    return value


def _max_words(spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    limit = _positive_int(spec, "value")

    def run(answer: Answer) -> str | None:
        words = len(answer.text.split())
        return None if words <= limit else f"{words} words, more than {limit}"

    return run


def _tool_call(spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    name = _string(spec, "name")
    validator = _validator(spec["schema"], "tool_call") if "schema" in spec else None

    def run(answer: Answer) -> str | None:
        calls = [args for called, args in answer.tool_calls if called == name]
        if not calls:
            made = ", ".join(c for c, _ in answer.tool_calls) or "none"
            return f"did not call {name} (tool calls: {made}; text: {_short(answer.text)})"
        try:
            args = orjson.loads(calls[0] or "{}")
        except orjson.JSONDecodeError:
            return f"{name} arguments are not valid JSON: {_short(calls[0])}"
        if validator is None:
            return None
        failure = _schema_failure(validator, args)
        return None if failure is None else f"{name} arguments do not match the schema {failure}"

    return run


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _float(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number")
    return float(value)


def _number(spec: dict[str, Any]) -> Callable[[Answer], str | None]:
    expected = _float(spec.get("value"), "value")
    tolerance = _float(spec.get("tolerance", 0), "tolerance")
    if tolerance < 0:
        raise ValueError("`tolerance` must not be negative")

    def run(answer: Answer) -> str | None:
        got = last_number(answer.text)
        if got is None:
            return f"no number in {_short(answer.text.strip())}"
        if abs(got - expected) > tolerance:
            return f"expected {expected:g} (±{tolerance:g}), got {got:g}"
        return None

    return run


_BUILDERS: dict[str, Callable[[dict[str, Any]], Callable[[Answer], str | None]]] = {
    "json_schema": _json_schema,
    "exact": lambda s: _text_check("exact", s),
    "contains": lambda s: _text_check("contains", s),
    "not_contains": lambda s: _text_check("not_contains", s),
    "regex": _regex,
    "max_words": _max_words,
    "tool_call": _tool_call,
    "number": _number,
}
CHECK_TYPES = tuple(_BUILDERS)


def parse_check(obj: Any) -> Check:
    if not isinstance(obj, dict):
        raise ValueError("a check is a JSON object with a `type`")
    kind = obj.get("type")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None or not isinstance(kind, str):
        raise ValueError(f"unknown check type {kind!r}; known: {', '.join(CHECK_TYPES)}")
    spec = {k: v for k, v in obj.items() if k != "type"}
    try:
        return Check(kind, spec, builder(spec))
    except ValueError as exc:
        raise ValueError(f"check {kind}: {exc}") from None


def failures(checks: list[Check], answer: Answer) -> list[str]:
    """Every failed check's reason, in the case's order (empty: the answer passed)."""
    return [f"{c.kind}: {why}" for c in checks if (why := c(answer)) is not None]
