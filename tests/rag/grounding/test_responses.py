"""`/v1/responses` with a file_search tool: the request as a chat completion, the answer
written back as a Response (whole and streamed), and the SDK reading both end to end
(real Postgres + pgvector, the fake embedder and chat engine)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.rag.grounding.citations import Source
from gateway.rag.grounding.responses_output import ResponsesRewriter
from gateway.rag.grounding.responses_request import chat_request
from gateway.rag.search.hybrid import SearchHit
from tests.admin import create_key
from tests.conftest import SdkFactory
from tests.fakes.engine import FakeEngine
from tests.rag.citations import file_citations
from tests.rag.conftest import RagFactory
from tests.rag.grounding.test_chat_retrieval import GUIDE, RECIPE, ingested

TOOL = {"type": "file_search", "vector_store_ids": ["vs_1"]}
HIT = SearchHit("file-1", "guide.md", 0.9, "It listens on port 8080.", {"a": 1}, "vs_1")
SOURCE = Source(1, "file-1", "guide.md", "It listens on port 8080.")


def test_a_request_becomes_a_chat_completion() -> None:
    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": "Hi"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello"}],
            },
            {"role": "user", "content": [{"type": "input_text", "text": "Which port?"}]},
        ],
        "max_output_tokens": 50,
        "temperature": 0.2,
        "stream": True,
        "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}},
        "include": ["file_search_call.results"],
        "metadata": {"k": "v"},
    }
    turn = chat_request(body, TOOL)
    assert turn.chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Which port?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert turn.include_results and turn.echo["tools"] == [TOOL]
    assert turn.echo["metadata"] == {"k": "v"} and turn.echo["max_output_tokens"] == 50
    assert chat_request({"model": "m", "input": "Hi"}, TOOL).chat["messages"] == [
        {"role": "user", "content": "Hi"}
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "tools": [{"type": "function", "name": "f"}]}, "tools"),
        ({"input": []}, "input"),
        ({"input": [{"type": "function_call_output", "output": "1"}]}, "input[0]"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
            "input[0].content[0]",
        ),
        ({"input": "x", "instructions": 3}, "instructions"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_it(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_request({"model": "m", **body}, TOOL)
    assert caught.value.param == param


def rewriter(include: bool = True) -> ResponsesRewriter:
    echo = chat_request({"model": "m", "input": "Which port?"}, TOOL).echo
    return ResponsesRewriter(echo, "Which port?", [HIT], [SOURCE], include)


def test_a_chat_completion_becomes_a_response() -> None:
    chat = {
        "model": "m",
        "choices": [{"message": {"content": "Port 8080 [1]."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }
    response = orjson.loads(rewriter().body(orjson.dumps(chat)))
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["id"].startswith("resp_") and response["model"] == "m"
    call, message = response["output"]
    assert call["type"] == "file_search_call" and call["queries"] == ["Which port?"]
    assert call["results"][0]["filename"] == "guide.md" and call["results"][0]["score"] == 0.9
    part = message["content"][0]
    assert part["text"] == "Port 8080 [1]."
    assert part["annotations"] == [
        {"type": "file_citation", "file_id": "file-1", "filename": "guide.md", "index": 10}
    ]
    assert response["usage"]["input_tokens"] == 20 and response["usage"]["total_tokens"] == 25
    assert response["tools"] == [TOOL] and response["store"] is False
    # Without `include`, the call does not repeat the passages.
    assert orjson.loads(rewriter(False).body(orjson.dumps(chat)))["output"][0]["results"] is None
    cut = {**chat, "choices": [{"message": {"content": "Port"}, "finish_reason": "length"}]}
    cut_short = orjson.loads(rewriter().body(orjson.dumps(cut)))
    assert cut_short["status"] == "incomplete"
    assert cut_short["incomplete_details"] == {"reason": "max_output_tokens"}


def sse(payload: Any) -> bytes:
    return b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload)) + b"\n\n"


def test_a_chat_stream_becomes_the_responses_event_sequence() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    upstream = [
        sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        sse({**chunk, "choices": [{"index": 0, "delta": {"content": "Port 8080 "}}]}),
        sse(
            {
                **chunk,
                "choices": [{"index": 0, "delta": {"content": "[1]."}, "finish_reason": "stop"}],
            }
        ),
        sse({**chunk, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5}}),
        sse(b"[DONE]"),
    ]
    rw = rewriter()
    out = [event for raw in upstream for event in rw.events([raw])]
    events = [orjson.loads(e.split(b"\ndata: ", 1)[1]) for e in out]
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert all(
        e.startswith(b"event: " + k.encode() + b"\n") for e, k in zip(out, kinds, strict=True)
    )
    assert events[11]["annotation"]["index"] == 10
    assert events[12]["text"] == "Port 8080 [1]."
    completed = events[-1]["response"]
    assert completed["id"] == events[0]["response"]["id"] and completed["status"] == "completed"
    assert completed["usage"]["output_tokens"] == 5
    # An error event from upstream passes through for the SDK to raise on.
    error = sse({"error": {"message": "boom", "type": "x", "code": 500}})
    assert rewriter().events([error]) == [error]


async def test_the_sdk_gets_a_grounded_response_whole_and_streamed(
    rag_factory: RagFactory,
    database_url: str,
    chat_engine: FakeEngine,
    embedder: Any,
    sdk: SdkFactory,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = (await create_key(gw)).secret
    client = sdk(gw, api_key=key)
    store_id, ids = await ingested(client, {"guide.md": GUIDE, "bread.md": RECIPE})
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 1}
    raw = await client.responses.with_raw_response.create(
        model="fake-model",
        instructions="Be brief.",
        input="Which port does the gateway listen on?",
        tools=[tool],  # type: ignore[list-item]
        include=["file_search_call.results"],
    )
    assert raw.headers["x-gateway-rag-passages-used"] == "1"
    response = raw.parse()
    sent = chat_engine.seen.bodies[-1]  # a chat completion, grounded, without the tool
    assert "tools" not in sent and sent["messages"][-1]["content"].endswith(
        "Question:\nWhich port does the gateway listen on?"
    )
    assert "listens on port 8080" in sent["messages"][-1]["content"]
    call, message = response.output
    assert call.type == "file_search_call" and call.results
    assert call.results[0].file_id == ids["guide.md"]
    assert message.type == "message" and response.output_text.startswith("tok0 ")
    assert [a.file_id for a in file_citations(message)] == [ids["guide.md"]]
    assert response.usage is not None and response.usage.input_tokens == 7

    async with client.responses.stream(
        model="fake-model",
        input="How long should dough rise?",
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.output_text.annotation.added" in kinds and kinds[-1] == "response.completed"
    assert final.output_text.startswith("tok0 ") and final.status == "completed"
    assert [a.filename for a in file_citations(final.output[1])] == ["bread.md"]
    assert chat_engine.seen.bodies[-1]["stream_options"] == {"include_usage": True}


async def test_a_responses_request_without_file_search_is_relayed_as_it_is(
    rag_factory: RagFactory,
    database_url: str,
    chat_engine: FakeEngine,
    embedder: Any,
    sdk: SdkFactory,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    client = sdk(gw, api_key=(await create_key(gw)).secret)
    await client.responses.create(model="fake-model", input="hi")
    assert chat_engine.seen.bodies[-1] == {"model": "fake-model", "input": "hi"}
