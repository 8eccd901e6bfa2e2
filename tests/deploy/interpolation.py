"""Compose's variable interpolation, as the Compose Specification defines it.

No well-kept Python library implements it (docker-compose v1, the Python one, is
unmaintained and predates `:+`, nesting and required values), so this is a small module of
its own, tested in `test_interpolation.py` against the examples of the specification
(https://docs.docker.com/reference/compose-file/interpolation/):

- `$VAR` and `${VAR}`; unset: an empty string and a warning;
- `${VAR:-default}` (unset or empty) and `${VAR-default}` (unset);
- `${VAR:?error}` (unset or empty) and `${VAR?error}` (unset): the command fails;
- `${VAR:+replacement}` (set and non-empty) and `${VAR+replacement}` (set);
- operands may hold further substitutions, evaluated only when used;
- `$$` is a literal `$`; a `$` that starts no valid name is kept as it is.

Values only: keys are never interpolated, and it runs on each file before files merge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """What `docker compose` stops on: a required variable without a value, bad syntax."""


@dataclass
class Interpolator:
    env: Mapping[str, str]
    # Variables that were read, and those read while unset (compose warns about those).
    used: set[str] = field(default_factory=set)
    unset: set[str] = field(default_factory=set)

    def value(self, node: Any) -> Any:
        """Interpolate every string value in a YAML tree (mappings' keys untouched)."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, dict):
            return {key: self.value(item) for key, item in node.items()}
        if isinstance(node, list):
            return [self.value(item) for item in node]
        return node

    def text(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1 : i + 2]
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = _closing_brace(text, i)
                out.append(self._braced(text[i + 2 : end]))
                i = end + 1
            elif (match := _NAME.match(text, i + 1)) is not None:
                out.append(self._lookup(match.group()) or "")
                i = match.end()
            else:
                out.append("$")
                i += 1
        return "".join(out)

    def _lookup(self, name: str) -> str | None:
        self.used.add(name)
        value = self.env.get(name)
        if value is None:
            self.unset.add(name)
        return value

    def _braced(self, inner: str) -> str:
        match = _NAME.match(inner)
        if match is None:
            raise InterpolationError(f"invalid interpolation format for ${{{inner}}}")
        name, rest = match.group(), inner[match.end() :]
        if not rest:
            return self._lookup(name) or ""
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise InterpolationError(f"invalid interpolation format for ${{{inner}}}")
        operand = rest[len(operator) :]
        self.used.add(name)
        value = self.env.get(name)
        present = value is not None and (value != "" or ":" not in operator)
        kind = operator[-1]
        if kind == "-":
            if present:
                return value or ""
            return self.text(operand)
        if kind == "?":
            if present:
                return value or ""
            message = self.text(operand)
            raise InterpolationError(f"required variable {name} is missing a value: {message}")
        # "+": the replacement when set, else nothing
        return self.text(operand) if present else ""


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` at `start`, nested `${...}` included."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unterminated interpolation in {text!r}")


def required_variables(text: str) -> dict[str, str]:
    """Every `${VAR:?message}` / `${VAR?message}` in a file's text: name -> message."""
    return {
        m.group(1): m.group(3)
        for m in re.finditer(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)(:?)\?([^}]*)\}", text)
    }
