"""The built-in suite loads, covers what the issue asks, and pairs plain and guided JSON."""

from __future__ import annotations

from pathlib import Path

from gateway.eval.cases import builtin_cases, parse_lines


def test_builtin_suite_loads() -> None:
    cases = builtin_cases()
    categories = {c.category for c in cases}
    assert {
        "json_valid",
        "json_valid_guided",
        "tool_calls",
        "instructions",
        "accuracy",
    } <= categories
    guided = [c for c in cases if c.category == "json_valid_guided"]
    plain = {c.id for c in cases if c.category == "json_valid"}
    # Every guided case is a plain one plus response_format, so the two rates compare.
    assert guided and all(c.response_format for c in guided)
    assert {c.id.removesuffix("-guided") for c in guided} == plain


def test_builtin_suite_is_small() -> None:
    # A CPU model answers it in minutes: few cases, short answers.
    cases = builtin_cases()
    assert len(cases) <= 40
    assert sum(c.max_tokens for c in cases) <= 4000
    tools = [c for c in cases if c.category == "tool_calls"]
    assert tools and all(c.tool_choice == "required" for c in tools)


def test_readme_case_examples_parse() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### The case format and the checks")[1].split("```json\n")[1]
    lines = section.split("```")[0].splitlines()
    cases = parse_lines(lines, "README")
    assert [c.id for c in cases] == ["invoice", "ticket"]
    assert {c.checks[0].kind for c in cases} == {"number", "json_schema"}
