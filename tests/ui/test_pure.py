"""The console's pure helpers: chart shaping, key forms, chat history and citations."""

from __future__ import annotations

import json

import pytest

from gateway.ui.charts import bucket_axis, chart_payload, summary
from gateway.ui.keys import FormError, key_spec
from gateway.ui.playground import citations, history_from
from gateway.ui.usage import choose
from gateway.ui.web import Form, safe_next


def _row(bucket: str, group: str | None, requests: int, **kw: object) -> dict[str, object]:
    return {
        "bucket": bucket,
        "group": group,
        "requests": requests,
        "total_tokens": kw.get("tokens", requests * 10),
        "rate_limited": kw.get("rate_limited", 0),
        "errors": kw.get("errors", 0),
        "ttft_ms_avg": kw.get("ttft"),
        "ttft_ms_p50": kw.get("ttft"),
    }


def test_axis_covers_the_window_in_whole_buckets() -> None:
    axis = bucket_axis("2026-11-02T10:30:00+00:00", "2026-11-02T13:00:00+00:00", "hour")
    assert [t % 3600 for t in axis] == [0, 0, 0]
    assert len(axis) == 3  # 10:00, 11:00, 12:00
    # A window ending just after a bucket starts includes that bucket.
    late = bucket_axis("2026-11-02T10:30:00+00:00", "2026-11-02T12:00:00.250+00:00", "hour")
    assert len(late) == 3


def test_chart_payload_fills_gaps_and_folds_small_groups() -> None:
    series = {
        "since": "2026-11-02T10:00:00+00:00",
        "until": "2026-11-02T13:00:00+00:00",
        "bucket": "hour",
        "data": [_row("2026-11-02T10:00:00+00:00", f"m{i}", 20 - i, ttft=100.0) for i in range(10)]
        + [_row("2026-11-02T12:00:00+00:00", "m0", 1, rate_limited=1)],
    }
    payload = chart_payload(series, {"m0": "Model zero"})
    assert len(payload["x"]) == 3
    requests, _tokens, limited, ttft = payload["charts"]
    assert requests["labels"][:2] == ["Model zero", "m1"] and requests["labels"][-1] == "other"
    assert len(requests["labels"]) == 9
    assert requests["values"][0] == [20, 0, 1]
    assert requests["values"][-1] == [12 + 11, 0, 0]  # m8 and m9 folded
    assert limited["values"][0] == [0, 0, 1]
    assert ttft["values"][0] == [100.0, None, None]
    assert ttft["values"][-1] == [None, None, None]


def test_a_series_from_the_rollup_charts_the_mean_time_to_first_token() -> None:
    rows = [_row("2026-11-02T00:00:00+00:00", "m0", 3, ttft=120.0)]
    rows[0]["ttft_ms_p50"] = None  # a long window comes from the rollup: no median
    series = {
        "since": "2026-11-01T00:00:00+00:00",
        "until": "2026-11-03T00:00:00+00:00",
        "bucket": "day",
        "data": rows,
    }
    ttft = chart_payload(series)["charts"][-1]
    assert ttft["title"] == "Time to first token, mean"
    assert ttft["values"][0] == [None, 120.0]


def test_summary_totals_per_group() -> None:
    rows = [
        _row("t1", "a", 2, ttft=100.0),
        _row("t2", "a", 2, ttft=300.0, errors=1),
        _row("t1", None, 5),
    ]
    table = summary(rows, {"a": "alpha"})
    assert [r["group"] for r in table] == ["(no key)", "alpha"]
    assert table[1]["requests"] == 4 and table[1]["errors"] == 1
    assert table[1]["ttft_ms_avg"] == 200.0 and table[0]["ttft_ms_avg"] is None


def test_key_form_to_api_body() -> None:
    form = Form(
        {
            "name": [" bot "],
            "models": ["a", "b"],
            "rpm": ["60"],
            "tpm": [""],
            "daily_tokens": ["2,000,000"],
            "expires_on": ["2030-01-31"],
        }
    )
    assert key_spec(form) == {
        "name": "bot",
        "models": ["a", "b"],
        "rpm": 60,
        "daily_tokens": 2_000_000,
        "expires_at": "2030-01-31T00:00:00Z",
    }
    trusted = {"name": ["owui"], "trusted_front_end": ["1"], "end_user_rpm": ["5"]}
    assert key_spec(Form(trusted)) == {"name": "owui", "trusted_front_end": True, "end_user_rpm": 5}
    for bad in (
        {"name": [""]},
        {"name": ["x"], "rpm": ["-1"]},
        {"name": ["x"], "tpm": ["1.5"]},
        {"name": ["x"], "end_user_rpm": ["5"]},  # per-person limits on an untrusted key
    ):
        with pytest.raises(FormError):
            key_spec(Form(bad))


def test_history_keeps_only_text_turns_and_citations() -> None:
    raw = [
        {"role": "system", "content": "ignore me"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "yo",
            "citations": [{"filename": "a.md", "quote": "q"}, 5],
        },
        {"role": "user", "content": ["not", "text"]},
        "junk",
    ]
    kept = history_from(Form({"history": [json.dumps(raw)]}))
    assert kept == [
        {"role": "user", "content": "hi", "citations": []},
        {"role": "assistant", "content": "yo", "citations": [{"filename": "a.md", "quote": "q"}]},
    ]
    assert history_from(Form({"history": ["{not json"]})) == []


def test_citations_from_annotations() -> None:
    note = {
        "type": "file_citation",
        "file_citation": {"file_id": "f1", "filename": "a.md", "quote": "port 8080", "index": 3},
    }
    message = {"content": "x", "annotations": [note, note, {"type": "url_citation"}]}
    assert citations(message) == [
        {"n": 1, "file_id": "f1", "filename": "a.md", "quote": "port 8080"}
    ]
    assert citations({"content": "x"}) == []


def test_usage_filters_stay_consistent() -> None:
    assert choose({})["bucket"] == "hour" and choose({})["window"] == "24h"
    assert choose({"window": "90d", "bucket": "hour"})["bucket"] == "day"
    assert choose({"window": "bogus", "group_by": "key"}) == {
        "window": "24h",
        "bucket": "hour",
        "group_by": "key",
        "key_id": "",
        "model": "",
    }


def test_next_stays_inside_the_console() -> None:
    assert safe_next("/ui/usage", "/ui") == "/ui/usage"
    for bad in (
        None,
        "",
        "/admin/keys",
        "https://x/ui/a",
        "//x/ui/",
        "/ui/../admin",
        "/ui/%2e%2e/admin",
        "/ui\\..\\admin",
        "/uix",
    ):
        assert safe_next(bad, "/ui") == "/ui/keys", bad
