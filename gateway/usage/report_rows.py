"""One usage row's counts as the reports show them (shared by report and by_end_user)."""

from __future__ import annotations

from typing import Any


def counts(row: Any) -> dict[str, int]:
    prompt, completion = int(row.prompt_tokens), int(row.completion_tokens)
    return {
        "requests": int(row.requests),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "errors": int(row.errors),
        "rate_limited": int(row.rate_limited),
        "cancelled": int(row.cancelled),
    }
