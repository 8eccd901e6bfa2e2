"""The case format: one JSON object per line (JSONL).

    {"id": "order-nested", "category": "json_valid",
     "messages": [{"role": "user", "content": "..."}],      # or "prompt": "..."
     "response_format": {...}, "tools": [...], "tool_choice": "auto",
     "max_tokens": 200,
     "checks": [{"type": "json_schema", "schema": {...}}, ...]}

`id` and `checks` are required, and `messages` or `prompt`. `category` names the metric
the case counts towards (default "custom"). Loading validates everything up front, so a
typo in a user's file is an error with its line number, not a silent zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from gateway.eval.checks import Check, parse_check

_CATEGORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_KNOWN = frozenset(
    {"id", "category", "messages", "prompt", "response_format", "tools", "tool_choice"}
    | {"max_tokens", "temperature", "checks", "note"}
)
BUILTIN = "builtin"


class CaseError(ValueError):
    """A case file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    messages: list[dict[str, Any]]
    checks: list[Check]
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    max_tokens: int = 256
    temperature: float = 0.0

    def request(self, model: str) -> dict[str, Any]:
        """The chat completion request body for this case."""
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.response_format is not None:
            body["response_format"] = self.response_format
        if self.tools is not None:
            body["tools"] = self.tools
        if self.tool_choice is not None:
            body["tool_choice"] = self.tool_choice
        return body


def parse_case(obj: Any) -> Case:
    if not isinstance(obj, dict):
        raise ValueError("a case is a JSON object")
    unknown = set(obj) - _KNOWN
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
    case_id = obj.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise ValueError("`id` must be a non-empty string")
    category = obj.get("category", "custom")
    if not isinstance(category, str) or not category or set(category) - _CATEGORY_CHARS:
        raise ValueError("`category` must be lower-case letters, digits and underscores")
    messages = _messages(obj)
    checks = obj.get("checks")
    if not isinstance(checks, list) or not checks:
        raise ValueError("`checks` must be a non-empty list")
    parsed = [parse_check(c) for c in checks]
    response_format = obj.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise ValueError("`response_format` must be an object")
    tools = obj.get("tools")
    if tools is not None and (not isinstance(tools, list) or not tools):
        raise ValueError("`tools` must be a non-empty list")
    max_tokens = obj.get("max_tokens", 256)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError("`max_tokens` must be a positive integer")
    temperature = obj.get("temperature", 0.0)
    if not isinstance(temperature, int | float) or isinstance(temperature, bool):
        raise ValueError("`temperature` must be a number")
    return Case(
        id=case_id,
        category=category,
        messages=messages,
        checks=parsed,
        response_format=response_format,
        tools=tools,
        tool_choice=obj.get("tool_choice"),
        max_tokens=max_tokens,
        temperature=float(temperature),
    )


def _messages(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if ("messages" in obj) == ("prompt" in obj):
        raise ValueError("give either `messages` or `prompt`")
    if "prompt" in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"]:
            raise ValueError("`prompt` must be a non-empty string")
        return [{"role": "user", "content": obj["prompt"]}]
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ValueError("each message must be an object with a `role`")
    return messages


def parse_lines(lines: Iterable[str], source: str) -> list[Case]:
    """Cases from JSONL text; blank lines and lines starting with `#` are skipped."""
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            case = parse_case(orjson.loads(stripped))
        except orjson.JSONDecodeError as exc:
            raise CaseError(f"{source}:{number}: not valid JSON ({exc})") from None
        except ValueError as exc:
            raise CaseError(f"{source}:{number}: {exc}") from None
        if case.id in seen:
            raise CaseError(f"{source}:{number}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CaseError(f"{source}: no cases")
    return cases


def load_cases(path: Path) -> list[Case]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"cannot read {path}: {exc}") from None
    return parse_lines(text.splitlines(), str(path))


def builtin_cases() -> list[Case]:
    """The suite shipped with the gateway (gateway/eval/suite/*.jsonl)."""
    folder = resources.files("gateway.eval") / "suite"
    cases: list[Case] = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.name.endswith(".jsonl"):
            cases.extend(parse_lines(item.read_text("utf-8").splitlines(), f"builtin/{item.name}"))
    return cases
