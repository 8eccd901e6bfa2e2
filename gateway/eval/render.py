"""The side-by-side table: one column per model (or stored run), one row per metric. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.eval.scoring import metric_order
from gateway.eval.template_check import TEMPLATE_KINDS

LABELS = {
    "json_valid": "JSON valid (instructions only)",
    "json_valid_guided": "JSON valid (response_format)",
    "tool_calls": "tool calls valid",
    "instructions": "instruction following",
    "accuracy": "accuracy",
    "chat_template": "chat-template probes",
    "overall": "overall",
}


def speed_rows(speed: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for s in speed:
        c = s["concurrency"]
        rows.append((f"TTFT p50, {c} stream(s)", f"{s['ttft_ms']:.0f} ms"))
        rows.append((f"decode tok/s per stream, {c}", f"{s['tokens_per_s']:.1f}"))
        if c > 1:
            rows.append((f"total tok/s, {c} streams", f"{s['total_tokens_per_s']:.1f}"))
    return rows


def cells(result: Mapping[str, Any]) -> dict[str, str]:
    """Row label -> cell text for one result (the JSON of a ModelReport)."""
    found: dict[str, str] = {}
    for metric, r in result["rates"].items():
        value = r["passed"] / r["total"] if r["total"] else 0.0
        found[LABELS.get(metric, metric)] = f"{value:.0%} ({r['passed']}/{r['total']})"
    for metric in result.get("not_measured") or []:
        found[LABELS.get(metric, metric)] = "not measured"
    found.update(speed_rows(result.get("speed") or []))
    template = [f for f in result.get("findings") or [] if f["kind"] in TEMPLATE_KINDS]
    found["chat template"] = "suspect" if template else "ok"
    return found


def row_order(results: Sequence[Mapping[str, Any]]) -> list[str]:
    found = {m for r in results for m in [*r["rates"], *(r.get("not_measured") or [])]}
    metrics = metric_order(found)
    labels = [LABELS.get(m, m) for m in metrics]
    labels.append("chat template")
    seen = set(labels)
    for r in results:
        for label, _ in speed_rows(r.get("speed") or []):
            if label not in seen:
                seen.add(label)
                labels.append(label)
    return labels


def column_title(result: Mapping[str, Any]) -> str:
    profile = result.get("profile")
    return f"{result['model']} ({profile})" if profile else str(result["model"])


def table(results: Sequence[Mapping[str, Any]]) -> str:
    titles = [column_title(r) for r in results]
    columns = [cells(r) for r in results]
    rows = [[label, *(c.get(label, "-") for c in columns)] for label in row_order(results)]
    header = ["metric", *titles]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (str(v).rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    ruler = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), ruler, *(line(r) for r in rows)])


def notes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Plain-words findings under the table, per model."""
    found = []
    for r in results:
        for f in r.get("findings") or []:
            found.append(f"{column_title(r)}: {f['message']}")
        if r.get("interrupted"):
            found.append(f"{column_title(r)}: interrupted; the table counts finished cases only.")
    return found
