"""One model's result: its attempts, rates, speed and template findings, as the JSON that
`--json` prints, `/admin/evals` stores and the console shows. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.eval.scoring import Attempt, Rate, metric_order, not_measured, rates
from gateway.eval.speed import SpeedResult
from gateway.eval.template_check import Finding, Sample, findings

TEMPLATE_PROBES = "chat_template"  # the category of the suite's template probes


@dataclass
class ModelReport:
    model: str
    profile: str | None = None
    suite: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    speed: list[SpeedResult] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)  # case id -> last user message
    interrupted: bool = False

    def rates(self) -> dict[str, Rate]:
        return rates(self.attempts)

    def findings(self) -> list[Finding]:
        return self._refusals() + findings(
            Sample(
                a.case_id, self.users.get(a.case_id, ""), a.output, a.category == TEMPLATE_PROBES
            )
            for a in self.attempts
        )

    def _refusals(self) -> list[Finding]:
        refused = [a for a in self.attempts if a.refused]
        if not refused:
            return []
        example = refused[0].error or ""
        return [
            Finding(
                "engine_refused",
                sorted({a.case_id for a in refused}),
                example,
                f"The engine refused {len(refused)} request(s) as it is configured, so "
                f"{', '.join(sorted({a.category for a in refused}))} was not measured: "
                f"{example.removeprefix('400: ').rstrip('.')}. Start vLLM with "
                "`--enable-auto-tool-choice "
                "--tool-call-parser NAME` (the parser for the model's family, e.g. hermes, "
                "llama3_json, mistral) to measure tool calls.",
            )
        ]

    def summary(self) -> dict[str, float]:
        """Every metric as one number: what `--require` tests and the table shows."""
        found = {m: r.value for m, r in self.rates().items()}
        for s in self.speed:
            found[f"ttft_ms_c{s.concurrency}"] = s.ttft_ms
            found[f"tokens_per_s_c{s.concurrency}"] = s.tokens_per_s
            found[f"total_tokens_per_s_c{s.concurrency}"] = s.total_tokens_per_s
        return found

    def to_json(self) -> dict[str, Any]:
        all_rates = self.rates()
        return {
            "model": self.model,
            "profile": self.profile,
            "suite": self.suite,
            "interrupted": self.interrupted,
            "summary": self.summary(),
            "rates": {
                m: {"passed": all_rates[m].passed, "total": all_rates[m].total}
                for m in metric_order(all_rates)
            },
            "not_measured": not_measured(self.attempts),
            "speed": [asdict(s) for s in self.speed],
            "findings": [asdict(f) for f in self.findings()],
            "cases": [
                {**asdict(a), "tool_calls": [list(c) for c in a.tool_calls]} for a in self.attempts
            ],
        }


def last_user_message(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""
