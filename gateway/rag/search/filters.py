"""OpenAI attribute filters (ComparisonFilter / CompoundFilter) as a SQL condition.

Pure: validates the filter and returns a SQL fragment over a JSONB column with its bind
parameters; keys and values only ever travel as parameters.

Semantics: `eq`/`in` compare JSON values (so 1 equals 1.0, and "1" does not equal 1);
`ne`/`nin` are their negation, so they also match files without the attribute;
`gt`/`gte`/`lt`/`lte` compare numbers with numbers and strings with strings (ISO dates
order correctly) and never match an attribute of another type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequest

COMPARISONS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
COMPOUNDS = frozenset({"and", "or"})
MAX_DEPTH = 8
MAX_CONDITIONS = 64
_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class _Compiler:
    column: str
    prefix: str
    params: dict[str, Any] = field(default_factory=dict)
    conditions: int = 0

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def compile(self, node: Any, depth: int, where: str) -> str:
        if not isinstance(node, dict):
            raise _invalid(f"{where} must be an object.", where)
        kind = node.get("type")
        if kind in COMPOUNDS:
            return self._compound(node, kind, depth, where)
        if kind in COMPARISONS:
            return self._comparison(node, kind, where)
        raise _invalid(
            f"{where}.type must be one of {sorted(COMPARISONS | COMPOUNDS)}, got {kind!r}.",
            where,
        )

    def _compound(self, node: dict[str, Any], kind: str, depth: int, where: str) -> str:
        if depth >= MAX_DEPTH:
            raise _invalid(f"filters nest deeper than {MAX_DEPTH} levels.", where)
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise _invalid(f"{where}.filters must be a non-empty array.", where)
        parts = [
            self.compile(child, depth + 1, f"{where}.filters[{i}]")
            for i, child in enumerate(children)
        ]
        joiner = " AND " if kind == "and" else " OR "
        return "(" + joiner.join(parts) + ")"

    def _comparison(self, node: dict[str, Any], kind: str, where: str) -> str:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _invalid(f"filters may hold at most {MAX_CONDITIONS} comparisons.", where)
        key = node.get("key")
        if not isinstance(key, str) or not key or len(key) > 64:
            raise _invalid(f"{where}.key must be a string of 1 to 64 characters.", where)
        if "value" not in node:
            raise _invalid(f"{where}.value is required.", where)
        value = node["value"]
        if kind in ("eq", "ne"):
            _scalar(value, where)
            # Containment, so that the GIN index on the column can serve selective filters.
            key_param, value_param = self.bind(key), self.bind(json.dumps(value))
            pair = f"jsonb_build_object(CAST({key_param} AS text), CAST({value_param} AS jsonb))"
            cond = f"({self.column} @> {pair})"
            return cond if kind == "eq" else f"(NOT {cond})"
        attr = f"({self.column} -> CAST({self.bind(key)} AS text))"
        if kind in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise _invalid(f"{where}.value must be a non-empty array for {kind}.", where)
            for item in value:
                _scalar(item, where)
            array = self.bind(json.dumps(value))
            # A missing attribute builds [null], which no list of scalars contains.
            cond = f"(CAST({array} AS jsonb) @> jsonb_build_array({attr}))"
            return cond if kind == "in" else f"(NOT {cond})"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _invalid(f"{where}.value must be a number or a string for {kind}.", where)
        json_type = "string" if isinstance(value, str) else "number"
        bound = self.bind(json.dumps(value))
        # Comparing JSON values of one type never casts, so no row can raise an error.
        return (
            f"(jsonb_typeof({attr}) = '{json_type}' AND "
            f"{attr} {_ORDER[kind]} CAST({bound} AS jsonb))"
        )


def _scalar(value: Any, where: str) -> None:
    if not isinstance(value, str | int | float | bool) or value is None:
        raise _invalid(f"{where}.value must be a string, number or boolean.", where)


def _invalid(message: str, where: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid filters: {message}", param=where)


def compile_filter(
    filters: dict[str, Any] | None, column: str = "attributes", prefix: str = "f"
) -> tuple[str, dict[str, Any]]:
    """`(sql, params)`; `("TRUE", {})` for no filter. Raises InvalidRequest (param names
    the offending part, e.g. `filters.filters[1].value`)."""
    if filters is None:
        return "TRUE", {}
    compiler = _Compiler(column, prefix)
    return compiler.compile(filters, 0, "filters"), compiler.params
