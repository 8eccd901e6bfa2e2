"""Speed arithmetic, the report's JSON and the side-by-side table: pure."""

from __future__ import annotations

import io
import json
from typing import Any

from gateway.eval.cases import parse_lines
from gateway.eval.checks import Answer
from gateway.eval.client import EvalApiError, Timing, api_root
from gateway.eval.progress import Progress
from gateway.eval.render import notes, table
from gateway.eval.report import ModelReport
from gateway.eval.runner import run_case
from gateway.eval.scoring import Attempt, parse_requirement
from gateway.eval.speed import prompts, summarize


def test_speed_prompts_share_no_prefix() -> None:
    found = prompts(8, seed=1)
    assert len(set(found)) == 8
    # No two prompts start with the same 8 characters: the prefix cache cannot reuse them.
    assert len({p[:8] for p in found}) == 8
    assert prompts(8, seed=1) == found and prompts(8, seed=2) != found


def test_summarize() -> None:
    timings = [Timing(0.1, 1.0, 11), Timing(0.3, 2.0, 21), Timing(0.2, 0.5, 6)]
    result = summarize(2, timings, wall_s=4.0)
    assert result.ttft_ms == 200.0
    assert result.tokens_per_s == 10.0  # (11-1)/1, (21-1)/2, (6-1)/0.5 → median 10
    assert result.total_tokens_per_s == 38 / 4.0
    assert summarize(1, [], 0).tokens_per_s == 0.0


def test_api_root() -> None:
    assert api_root("http://h:8080/v1/") == "http://h:8080"
    assert api_root("http://h:8080") == "http://h:8080"


def test_table_side_by_side() -> None:
    good = ModelReport("good", attempts=[Attempt("a", "json_valid", True)] * 2)
    weak = ModelReport(
        "weak",
        profile="q4",
        attempts=[
            Attempt("a", "json_valid", False, output="<|im_start|>assistant"),
            Attempt("a", "json_valid", True),
            Attempt("b", "mine", True),
        ],
        speed=[summarize(1, [Timing(0.05, 1.0, 11)], 1.0)],
    )
    results = [good.to_json(), weak.to_json()]
    assert results[1]["summary"]["json_valid"] == 0.5
    assert results[1]["summary"]["tokens_per_s_c1"] == 10.0
    text = table(results)
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "good", "weak", "(q4)"]
    row = next(line for line in lines if line.startswith("JSON valid (instructions only)"))
    assert row.split()[-4:] == ["100%", "(2/2)", "50%", "(1/2)"]
    assert "mine" in text and "TTFT p50, 1 stream(s)" in text
    chat = next(line for line in lines if line.startswith("chat template"))
    assert chat.split()[-2:] == ["ok", "suspect"]
    [note] = notes(results)
    assert note.startswith("weak (q4): The model wrote chat role markers (<|im_start|>)")


class RefusingClient:
    """Answers like vLLM started without a tool-call parser: tools are refused with 400."""

    async def chat(self, body: dict[str, Any]) -> Answer:
        if body.get("tools"):
            raise EvalApiError(400, 'tool_choice="required" requires --tool-call-parser to be set')
        if "boom" in body["messages"][0]["content"]:
            raise EvalApiError(500, "upstream died")
        return Answer("42")


async def test_engine_refusals_are_not_measured_not_zero() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    cases = parse_lines(
        [
            json.dumps(
                {
                    "id": "t",
                    "category": "tool_calls",
                    "prompt": "x",
                    "tools": [tool],
                    "tool_choice": "required",
                    "checks": [{"type": "tool_call", "name": "f"}],
                }
            ),
            '{"id": "n", "category": "accuracy", "prompt": "6*7?",'
            ' "checks": [{"type": "number", "value": 42}]}',
            '{"id": "b", "category": "accuracy", "prompt": "boom",'
            ' "checks": [{"type": "number", "value": 42}]}',
        ],
        "f",
    )
    client: Any = RefusingClient()
    report = ModelReport("m")
    for case in cases:
        report.attempts.append(await run_case(client, "m", case))
    out = report.to_json()
    assert out["not_measured"] == ["tool_calls"]
    assert out["rates"]["accuracy"] == {"passed": 1, "total": 2}  # a 500 is a failure
    assert "tool_calls" not in out["rates"] and out["rates"]["overall"]["total"] == 2
    [finding] = out["findings"]
    assert finding["kind"] == "engine_refused" and "--tool-call-parser NAME" in finding["message"]
    text = table([out])
    assert "tool calls valid  not measured" in text
    chat = next(line for line in text.splitlines() if line.startswith("chat template"))
    assert chat.split()[-1] == "ok"  # an engine flag is not a template problem
    assert parse_requirement("tool_calls>=0.9").missed(out["summary"]) == (
        "tool_calls>=0.9: tool_calls was not measured"
    )


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_on_a_terminal_and_prints_quarters_otherwise() -> None:
    tty = Tty()
    bar = Progress(tty)
    bar.start("m", 4)
    bar.step(True)
    bar.step(False)
    bar.finish()
    assert "\r\x1b[K[###############---------------] m: 2/4 cases, 1 failed" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    log = io.StringIO()
    plain = Progress(log)
    plain.start("m", 8)
    for _ in range(8):
        plain.step(True)
    assert log.getvalue().splitlines() == [f"m: {n}/8 cases, 0 failed" for n in (0, 2, 4, 6, 8)]
    assert "\r" not in log.getvalue()


class LimitedClient:
    """A key over its rate limit twice (429 with retry-after), then an answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, body: dict[str, Any]) -> Answer:
        self.calls += 1
        if self.calls <= 2:
            raise EvalApiError(429, "Rate limit reached", retry_after_s=0.01)
        return Answer("42")


async def test_rate_limits_are_waited_out_not_scored() -> None:
    [case] = parse_lines(
        [
            '{"id": "n", "category": "accuracy", "prompt": "6*7?",'
            ' "checks": [{"type": "number", "value": 42}]}'
        ],
        "f",
    )
    client: Any = LimitedClient()
    attempt = await run_case(client, "m", case)
    assert attempt.passed and client.calls == 3
