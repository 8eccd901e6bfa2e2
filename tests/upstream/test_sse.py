from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.upstream.sse import (
    EventSplitter,
    StreamUsage,
    event_data,
    is_usage_chunk,
    normalise_error_body,
    normalise_error_event,
    responses_usage,
)


def test_events_split_across_reads_are_reassembled() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'data: {"a"') == []
    assert splitter.feed(b': 1}\n\ndata: {"b": 2}\n') == [b'data: {"a": 1}\n\n']
    assert splitter.feed(b"\ndata: [DONE]\n\n") == [b'data: {"b": 2}\n\n', b"data: [DONE]\n\n"]
    assert splitter.flush() == b""


def test_crlf_framing_is_understood() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b"data: 1\r\n\r\ndata: 2\r\n\r\n") == [b"data: 1\n\n", b"data: 2\n\n"]


def test_truncated_tail_is_flushed() -> None:
    splitter = EventSplitter()
    splitter.feed(b"data: partial")
    assert splitter.flush() == b"data: partial"


def test_multi_line_data_is_joined() -> None:
    assert event_data(b"event: x\ndata: a\ndata: b\n\n") == b"a\nb"


def chunk(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_usage_chunk_is_recognised_and_content_chunks_counted() -> None:
    usage = StreamUsage()
    assert not is_usage_chunk(chunk({"choices": [{"delta": {"content": "x"}}]}), usage)
    assert not is_usage_chunk(chunk({"choices": [{"delta": {}}], "usage": None}), usage)
    final = chunk({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 9}})
    assert is_usage_chunk(final, usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.chunks) == (4, 9, 2)


def test_continuous_usage_on_content_chunks_is_kept() -> None:
    usage = StreamUsage()
    with_usage = chunk(
        {
            "choices": [{"delta": {"content": "x"}}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1},
        }
    )
    assert not is_usage_chunk(with_usage, usage)
    assert usage.completion_tokens == 1


def test_responses_usage_comes_from_the_completed_event() -> None:
    usage = StreamUsage()
    responses_usage(b'event: response.created\ndata: {"type":"response.created"}\n\n', usage)
    done = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 3, "output_tokens": 5}},
    }
    responses_usage(b"event: response.completed\n" + chunk(done), usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 5)


def test_responses_streams_count_only_text_deltas_towards_a_cut_answer() -> None:
    usage = StreamUsage()
    for kind in ("response.created", "response.in_progress", "response.output_item.added"):
        responses_usage(f"event: {kind}\n".encode() + chunk({"type": kind}), usage)
    delta = {"type": "response.output_text.delta", "delta": 'say ".delta"'}
    for _ in range(3):
        responses_usage(b"event: response.output_text.delta\n" + chunk(delta), usage)
    assert usage.chunks == 3
    assert usage.prompt_tokens is None  # cut before response.completed


def test_flat_vllm_error_event_is_normalised() -> None:
    flat = chunk({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400})
    body = orjson.loads(event_data(normalise_error_event(flat)))
    assert body == {
        "error": {"message": "bad", "type": "BadRequestError", "param": None, "code": None}
    }
    plain = chunk({"choices": []})
    assert normalise_error_event(plain) is plain


@pytest.mark.parametrize(
    ("payload", "status", "message", "type_"),
    [
        ({"error": {"message": "m"}}, 400, "m", "invalid_request_error"),
        ({"object": "error", "message": "m", "type": "X", "code": 400}, 400, "m", "X"),
        ({"detail": "Not Found"}, 404, "Not Found", "invalid_request_error"),
        ({"error": "oops"}, 500, "oops", "server_error"),
        (None, 502, "fallback text", "server_error"),
    ],
)
def test_error_bodies_are_normalised(
    payload: object, status: int, message: str, type_: str
) -> None:
    error = normalise_error_body(payload, status, "fallback text")["error"]
    assert error["message"] == message and error["type"] == type_
    assert set(error) == {"message", "type", "param", "code"}
