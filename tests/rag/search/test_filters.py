"""Filters compile to SQL that Postgres evaluates as OpenAI describes (checked on real rows)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from gateway.db.url import libpq_url
from gateway.errors import InvalidRequest
from gateway.rag.search.filters import compile_filter

ROWS = {
    "a": {"kind": "doc", "year": 2023, "draft": False, "date": "2024-01-05"},
    "b": {"kind": "note", "year": 2024, "draft": True},
    "c": {"kind": "doc", "year": 2025.5, "date": "2025-03-01"},
    "d": {"year": "2024"},  # a string, not a number
}


def test_no_filter_is_true() -> None:
    assert compile_filter(None) == ("TRUE", {})


def test_values_travel_as_parameters() -> None:
    sql, params = compile_filter({"type": "eq", "key": "x'); DROP TABLE t; --", "value": "y"})
    assert "DROP" not in sql and "x'); DROP TABLE t; --" in params.values()


@pytest.mark.parametrize(
    ("filters", "param"),
    [
        ({"type": "like", "key": "k", "value": 1}, "filters"),
        ({"type": "eq", "key": "", "value": 1}, "filters"),
        ({"type": "eq", "key": "k"}, "filters"),
        ({"type": "in", "key": "k", "value": "x"}, "filters"),
        ({"type": "gt", "key": "k", "value": True}, "filters"),
        ({"type": "eq", "key": "k", "value": {"a": 1}}, "filters"),
        ({"type": "and", "filters": []}, "filters"),
        (
            {"type": "or", "filters": [{"type": "eq", "key": "k", "value": [1]}]},
            "filters.filters[0]",
        ),
        ("eq", "filters"),
    ],
)
def test_invalid_filters_name_the_part(filters: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        compile_filter(filters)
    assert info.value.param == param


def test_depth_is_bounded() -> None:
    node: dict[str, Any] = {"type": "eq", "key": "k", "value": 1}
    for _ in range(10):
        node = {"type": "and", "filters": [node]}
    with pytest.raises(InvalidRequest):
        compile_filter(node)


def matching(database_url: str, filters: dict[str, Any]) -> set[str]:
    sql, params = compile_filter(filters)
    # psycopg uses %(name)s placeholders; the compiler emits :name for SQLAlchemy text().
    for name in sorted(params, key=len, reverse=True):
        sql = sql.replace(f":{name}", f"%({name})s")
    values = ", ".join(f"('{k}', %(row_{k})s::jsonb)" for k in ROWS)
    rows = {f"row_{k}": json.dumps(v) for k, v in ROWS.items()}
    query = f"SELECT id FROM (VALUES {values}) AS t(id, attributes) WHERE {sql}"  # noqa: S608
    with psycopg.connect(libpq_url(database_url)) as conn:
        return {r[0] for r in conn.execute(query, {**params, **rows}).fetchall()}


def test_semantics_on_postgres(database_url: str) -> None:
    def m(f: dict[str, Any]) -> set[str]:
        return matching(database_url, f)

    assert m({"type": "eq", "key": "kind", "value": "doc"}) == {"a", "c"}
    assert m({"type": "ne", "key": "kind", "value": "doc"}) == {"b", "d"}  # missing matches
    assert m({"type": "eq", "key": "year", "value": 2024}) == {"b"}  # not the string "2024"
    assert m({"type": "eq", "key": "year", "value": 2023.0}) == {"a"}
    assert m({"type": "eq", "key": "draft", "value": True}) == {"b"}
    assert m({"type": "gt", "key": "year", "value": 2023}) == {"b", "c"}
    assert m({"type": "gte", "key": "year", "value": 2023}) == {"a", "b", "c"}
    assert m({"type": "lt", "key": "year", "value": 2024}) == {"a"}
    assert m({"type": "lte", "key": "date", "value": "2024-12-31"}) == {"a"}
    assert m({"type": "in", "key": "kind", "value": ["note", "x"]}) == {"b"}
    assert m({"type": "nin", "key": "kind", "value": ["note"]}) == {"a", "c", "d"}
    assert m({"type": "in", "key": "year", "value": [2023, 2025.5]}) == {"a", "c"}
    nested = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "kind", "value": "note"},
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "kind", "value": "doc"},
                    {"type": "gte", "key": "date", "value": "2025-01-01"},
                ],
            },
        ],
    }
    assert m(nested) == {"b", "c"}
