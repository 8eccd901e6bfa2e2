"""The checkers, case parsing, scoring and the template check: pure, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.eval.cases import CaseError, load_cases, parse_lines
from gateway.eval.checks import Answer, failures, last_number, parse_check
from gateway.eval.scoring import Attempt, metric_order, parse_requirement, rates
from gateway.eval.template_check import Sample, continues, findings, markers_in

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "role": {"enum": ["admin", "user"]}},
    "required": ["name", "role"],
    "additionalProperties": False,
}


def check(
    spec: dict[str, Any], text: str = "", calls: list[tuple[str, str]] | None = None
) -> str | None:
    return parse_check(spec)(Answer(text, calls or []))


def test_json_schema() -> None:
    spec = {"type": "json_schema", "schema": PERSON}
    assert check(spec, ' {"name": "Ada", "role": "admin"}\n') is None
    assert "not valid JSON" in str(check(spec, '```json\n{"name": "Ada"}\n```'))
    assert "at role" in str(check(spec, '{"name": "Ada", "role": "root"}'))
    assert "'role' is a required property" in str(check(spec, '{"name": "Ada"}'))
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        parse_check({"type": "json_schema", "schema": {"type": "objekt"}})


def test_text_checks() -> None:
    assert check({"type": "exact", "value": "Paris"}, " Paris\n") is None
    assert check({"type": "exact", "value": "Paris"}, "paris") is not None
    assert check({"type": "exact", "value": "Paris", "ignore_case": True}, "paris") is None
    assert check({"type": "contains", "value": "blue"}, "The sky is blue.") is None
    assert check({"type": "contains", "value": "red"}, "The sky is blue.") is not None
    assert check({"type": "not_contains", "value": "sorry"}, "Sorry!") is None
    assert (
        check({"type": "not_contains", "value": "sorry", "ignore_case": True}, "Sorry") is not None
    )
    assert check({"type": "regex", "pattern": r"\d{4}-\d{2}"}, "on 2024-05") is None
    assert check({"type": "regex", "pattern": r"\d+", "full": True}, "12 apples") is not None
    assert check({"type": "max_words", "value": 3}, "one two three") is None
    assert "4 words" in str(check({"type": "max_words", "value": 3}, "one two three four"))
    with pytest.raises(ValueError, match="invalid regex"):
        parse_check({"type": "regex", "pattern": "("})


def test_tool_call() -> None:
    spec = {
        "type": "tool_call",
        "name": "get_weather",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    }
    assert check(spec, calls=[("get_weather", '{"city": "Oslo", "days": 3}')]) is None
    assert "did not call get_weather" in str(check(spec, "It is sunny."))
    assert "at days" in str(check(spec, calls=[("get_weather", '{"city": "Oslo", "days": "3"}')]))
    assert "not valid JSON" in str(check(spec, calls=[("get_weather", '{"city": ')]))
    assert check({"type": "tool_call", "name": "x"}, calls=[("x", "")]) is None


def test_number() -> None:
    assert last_number("It costs 1,250.50 dollars") == 1250.5
    assert last_number("none") is None
    assert check({"type": "number", "value": 42}, "6*7 = 42") is None
    assert check({"type": "number", "value": 42}, "42 is wrong, it is 41") is not None
    assert check({"type": "number", "value": 3.14, "tolerance": 0.01}, "about 3.141") is None
    assert "no number" in str(check({"type": "number", "value": 1}, "one"))
    with pytest.raises(ValueError, match="tolerance"):
        parse_check({"type": "number", "value": 1, "tolerance": -1})


def test_failures_lists_every_failed_check() -> None:
    checks = [
        parse_check({"type": "contains", "value": "a"}),
        parse_check({"type": "max_words", "value": 1}),
    ]
    assert failures(checks, Answer("b c")) == [
        "contains: does not contain 'a'",
        "max_words: 2 words, more than 1",
    ]
    assert failures(checks, Answer("a")) == []


def test_case_files(tmp_path: Path) -> None:
    good = tmp_path / "cases.jsonl"
    good.write_text(
        '# my cases\n{"id": "a", "prompt": "Say hi",'
        ' "checks": [{"type": "contains", "value": "hi"}]}\n\n'
        '{"id": "b", "category": "json_valid", "messages": [{"role": "user", "content": "x"}],'
        ' "response_format": {"type": "json_object"}, "max_tokens": 9,'
        ' "checks": [{"type": "json_schema", "schema": {"type": "object"}}]}\n'
    )
    a, b = load_cases(good)
    assert (a.category, a.messages) == ("custom", [{"role": "user", "content": "Say hi"}])
    body = b.request("m")
    assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 9
    assert "tools" not in body and body["temperature"] == 0.0

    bad = [
        ('{"id": "a", "prompt": "x"}', "`checks` must be a non-empty list"),
        ('{"id": "a", "prompt": "x", "checks": [{"type": "nope"}]}', "unknown check type"),
        (
            '{"id": "a", "checks": [{"type": "exact", "value": "x"}]}',
            "either `messages` or `prompt`",
        ),
        ('{"id": "a", "prompt": "x", "chekcs": []}', "unknown field"),
        ("{not json", "not valid JSON"),
    ]
    for line, message in bad:
        with pytest.raises(CaseError, match=message) as raised:
            parse_lines(["", line], "mine.jsonl")
        assert str(raised.value).startswith("mine.jsonl:2:")
    dup = '{"id": "a", "prompt": "x", "checks": [{"type": "exact", "value": "x"}]}'
    with pytest.raises(CaseError, match="duplicate case id"):
        parse_lines([dup, dup], "f")
    with pytest.raises(CaseError, match="cannot read"):
        load_cases(tmp_path / "missing.jsonl")


def test_rates_and_requirements() -> None:
    attempts = [
        Attempt("a", "json_valid", True),
        Attempt("a", "json_valid", False),
        Attempt("b", "mine", True),
        Attempt("c", "accuracy", False),
    ]
    found = rates(attempts)
    assert found["json_valid"].value == 0.5 and found["overall"].passed == 2
    assert metric_order(found) == ["json_valid", "accuracy", "mine", "overall"]
    need = parse_requirement("json_valid >= 0.95")
    assert need.missed({"json_valid": 0.5}) == "json_valid>=0.95: got 0.5"
    assert need.missed({"json_valid": 1.0}) is None
    assert "not measured" in str(need.missed({}))
    assert parse_requirement("ttft_ms_c1<800").missed({"ttft_ms_c1": 900.0}) is not None
    with pytest.raises(ValueError, match="METRIC OP NUMBER"):
        parse_requirement("json_valid=>1")


def test_template_check() -> None:
    assert markers_in("Sure!<|im_end|>\n<|im_start|>user\nmore") == ["<|im_end|>", "<|im_start|>"]
    assert markers_in("### User: hello") == ["### User:"]
    assert markers_in("The user: a person who uses it.") == []
    user = "Finish this task for me: name the largest planet in the solar system."
    assert continues(user, "for me: name the largest planet in the solar system. And then")
    assert not continues(user, "Jupiter.")
    found = findings(
        [
            Sample("a", "hi", "Hello [/INST] [INST] again"),
            Sample("b", user, user + " Also name the smallest.", probe=True),
            Sample("c", user, user, probe=False),  # only probes are read for echo
            Sample("d", "hi", "Hello!"),
        ]
    )
    assert [(f.kind, f.cases) for f in found] == [
        ("role_markers", ["a"]),
        ("continues_prompt", ["b"]),
    ]
    assert "--chat-template" in found[0].message and "--tokenizer" in found[1].message
    assert findings([Sample("d", "hi", "Hello!", probe=True)]) == []
