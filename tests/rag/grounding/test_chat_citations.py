"""The file_search tool's checks and the citations added to answers: pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.rag.grounding.chat import take_file_search
from gateway.rag.grounding.citations import CitationRewriter, Source, annotate
from gateway.upstream.sse import DONE

FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {}}}
SOURCES = [Source(1, "file-a", "a.md", "alpha text"), Source(2, "file-b", "b.md", "beta text")]


def chat(*tools: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "q"}], "tools": list(tools)}


def cited(file_id: str, index: int) -> dict[str, Any]:
    source = next(s for s in SOURCES if s.file_id == file_id)
    return {
        "type": "file_citation",
        "file_citation": {
            "file_id": file_id,
            "filename": source.filename,
            "index": index,
            "quote": source.quote,
        },
    }


# -- the tool --------------------------------------------------------------------------


def test_the_tool_is_taken_out_with_tool_choice_when_none_remains() -> None:
    body = chat({"type": "file_search", "vector_store_ids": ["vs_1", "vs_2", "vs_1"]})
    body |= {"tool_choice": "auto", "parallel_tool_calls": True}
    tool = take_file_search(body)
    assert tool is not None
    assert tool.vector_store_ids == ["vs_1", "vs_2"] and tool.max_num_results == 10
    assert tool.filters is None and tool.score_threshold is None
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body


def test_other_tools_stay_and_a_tool_choice_naming_file_search_goes() -> None:
    search = {
        "type": "file_search",
        "vector_store_ids": ["vs_1"],
        "max_num_results": 3,
        "filters": {"type": "eq", "key": "lang", "value": "en"},
        "ranking_options": {"ranker": "auto", "score_threshold": 0.5},
    }
    body = chat(FUNCTION, search) | {"tool_choice": {"type": "file_search"}}
    tool = take_file_search(body)
    assert tool is not None and tool.position == 1
    assert (tool.max_num_results, tool.score_threshold) == (3, 0.5)
    assert tool.filters == {"type": "eq", "key": "lang", "value": "en"}
    assert body["tools"] == [FUNCTION] and "tool_choice" not in body
    body = chat(FUNCTION, search) | {"tool_choice": "auto"}
    take_file_search(body)
    assert body["tool_choice"] == "auto"


def test_requests_without_the_tool_are_left_alone() -> None:
    body = chat(FUNCTION) | {"tool_choice": "auto"}
    assert take_file_search(body) is None
    assert body == chat(FUNCTION) | {"tool_choice": "auto"}
    assert take_file_search({"tools": "nonsense"}) is None


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({}, "tools[0].vector_store_ids"),
        ({"vector_store_ids": "vs_1"}, "tools[0].vector_store_ids"),
        ({"vector_store_ids": []}, "tools[0].vector_store_ids"),
        ({"vector_store_ids": ["vs_1", 2]}, "tools[0].vector_store_ids"),
        ({"vector_store_ids": [""]}, "tools[0].vector_store_ids"),
        ({"vector_store_ids": ["vs_1"], "max_num_results": 0}, "tools[0].max_num_results"),
        ({"vector_store_ids": ["vs_1"], "max_num_results": 51}, "tools[0].max_num_results"),
        ({"vector_store_ids": ["vs_1"], "max_num_results": "5"}, "tools[0].max_num_results"),
        ({"vector_store_ids": ["vs_1"], "max_num_results": True}, "tools[0].max_num_results"),
        ({"vector_store_ids": ["vs_1"], "max_num_results": 2.5}, "tools[0].max_num_results"),
        ({"vector_store_ids": ["vs_1"], "filters": []}, "tools[0].filters"),
        ({"vector_store_ids": ["vs_1"], "ranking_options": 1}, "tools[0].ranking_options"),
        (
            {"vector_store_ids": ["vs_1"], "ranking_options": {"score_threshold": 2}},
            "tools[0].ranking_options.score_threshold",
        ),
        (
            {"vector_store_ids": ["vs_1"], "ranking_options": {"score_threshold": "hi"}},
            "tools[0].ranking_options.score_threshold",
        ),
    ],
)
def test_a_malformed_tool_is_a_400_naming_the_field(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        take_file_search(chat({"type": "file_search", **tool}))
    assert err.value.status == 400 and err.value.param == param
    assert param in err.value.message


def test_two_file_search_tools_are_refused() -> None:
    search = {"type": "file_search", "vector_store_ids": ["vs_1"]}
    with pytest.raises(InvalidRequest) as err:
        take_file_search(chat(FUNCTION, search, search))
    assert err.value.param == "tools[2]"


# -- citations -------------------------------------------------------------------------


def test_markers_are_cited_where_they_stand_and_the_rest_at_the_end() -> None:
    text = "Alpha is first [1]. Both agree [2, 1]. Unknown [7]."
    found = annotate(text, SOURCES)
    assert found == [cited("file-a", 15), cited("file-b", 31), cited("file-a", 31)]
    assert annotate("No marker.", SOURCES) == [cited("file-a", 10), cited("file-b", 10)]
    assert annotate("", []) == []


def test_a_body_gets_annotations_on_every_choice() -> None:
    body = {
        "id": "x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "See [2]."}},
            {"index": 1, "message": {"role": "assistant", "content": None, "annotations": []}},
        ],
        "usage": {"prompt_tokens": 1},
    }
    out = orjson.loads(CitationRewriter(SOURCES).body(orjson.dumps(body)))
    assert out["choices"][0]["message"]["annotations"] == [
        cited("file-b", 4),
        cited("file-a", 8),
    ]
    assert out["choices"][1]["message"]["annotations"] == [
        cited("file-a", 0),
        cited("file-b", 0),
    ]
    assert out["usage"] == {"prompt_tokens": 1}
    assert CitationRewriter(SOURCES).body(b"not json") == b"not json"


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk(content: str | None = None, *, choices: bool = True, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 5}
    payload["model"] = "m"
    delta = {"content": content} if content is not None else {}
    payload["choices"] = [{"index": 0, "delta": delta, **extra}] if choices else []
    return event(payload)


def final_annotations(out: list[bytes]) -> list[dict[str, Any]]:
    annotated = [e for e in out if b"annotations" in e]
    assert len(annotated) == 1
    payload = orjson.loads(annotated[0][6:])
    assert payload["id"] == "c1" and payload["model"] == "m" and payload["created"] == 5
    return payload["choices"][0]["delta"]["annotations"]  # type: ignore[no-any-return]


def test_a_stream_gets_one_annotations_chunk_just_before_done() -> None:
    rewriter = CitationRewriter(SOURCES)
    out = rewriter.events([chunk("Per "), chunk("[1] yes")])
    out += rewriter.events([chunk(finish_reason="stop"), DONE])
    assert out[-1] == DONE and b"annotations" in out[-2]
    assert final_annotations(out) == [cited("file-a", 4), cited("file-b", 11)]
    assert rewriter.events([DONE]) == [DONE]  # never twice


def test_the_annotations_chunk_precedes_the_usage_chunk() -> None:
    rewriter = CitationRewriter(SOURCES)
    usage = chunk(choices=False, usage={"prompt_tokens": 3})
    out = rewriter.events([chunk("a"), usage, DONE])
    assert out[0] == chunk("a") and b"annotations" in out[1] and out[2:] == [usage, DONE]


def test_error_events_pass_and_a_cut_stream_gets_no_annotations() -> None:
    error = event({"error": {"message": "boom"}})
    rewriter = CitationRewriter(SOURCES)
    assert rewriter.events([chunk("a"), error]) == [chunk("a"), error]
