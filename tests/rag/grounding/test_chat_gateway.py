"""file_search chats through a real gateway (Postgres, keys) in front of the fake engine.

Retrieval is replaced by canned hits here, so these tests pin down the chat side alone:
what reaches the engine, the fitting, the headers and the citations.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.rag.grounding import chat as rag_chat
from gateway.rag.search.hybrid import SearchHit
from tests.admin import ADMIN_KEY, create_key
from tests.conftest import GatewayFactory, RunningGateway, SdkFactory
from tests.fakes.engine import (
    TEMPLATE_TOKENS_GENERATION,
    TEMPLATE_TOKENS_PER_MESSAGE,
    FakeEngine,
    _words,
)

CHAT = "/v1/chat/completions"
TOOL = {"type": "file_search", "vector_store_ids": ["vs_docs"], "max_num_results": 3}
FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
HITS = [
    SearchHit("file-a", "guide.md", 0.9, "The gateway listens on port 8080.", {}, "vs_docs"),
    SearchHit("file-b", "faq.md", 0.5, "Keys are hashed with SHA-256.", {}, "vs_docs"),
    SearchHit("file-c", "old.md", 0.1, "word " * 200, {}, "vs_docs"),
]


class Searches:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.hits = list(HITS)

    async def __call__(
        self, services: Any, key: Any, store_ids: list[str], query: str, **kw: Any
    ) -> list[Any]:
        self.calls.append({"key": key, "store_ids": store_ids, "query": query, **kw})
        return self.hits[: kw["max_results"]]


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Searches:
    fake = Searches()
    monkeypatch.setattr(rag_chat, "search_stores", fake)
    return fake


@pytest.fixture
async def guarded(keyed_factory: GatewayFactory) -> tuple[RunningGateway, dict[str, str]]:
    gw = await keyed_factory()
    return gw, (await create_key(gw, "rag")).headers


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": list(messages), "tools": [TOOL], **fields}


SYSTEM = {"role": "system", "content": "You are terse."}
QUESTION = {"role": "user", "content": [{"type": "text", "text": "Which port?"}]}


def sse_payloads(text: str) -> list[Any]:
    events = [e[len("data: ") :] for e in text.split("\n\n") if e.startswith("data: ")]
    return [e if e == "[DONE]" else orjson.loads(e) for e in events]


async def test_non_streamed_answer_cites_the_passages_the_engine_was_given(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    gw, auth = guarded
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=body(SYSTEM, QUESTION, tool_choice="auto"))
    assert response.status_code == 200, response.text
    sent = engine.seen.bodies[0]
    assert "tools" not in sent and "tool_choice" not in sent
    assert searches.calls[0]["query"] == "Which port?"
    assert searches.calls[0]["store_ids"] == ["vs_docs"]
    payer = searches.calls[0]["key"]  # the request's key pays for the query's embedding
    assert payer.key is not None and payer.within_request and payer.route == "/v1/chat/completions"
    assert sent["messages"][0] == SYSTEM  # unchanged: the prefix vLLM caches
    asked = sent["messages"][1]
    sources, *question = asked["content"]
    assert asked["role"] == "user" and question == QUESTION["content"]
    assert "[1] guide.md: The gateway listens on port 8080." in sources["text"]
    assert "[2] faq.md: Keys are hashed with SHA-256." in sources["text"]
    assert len(sent["messages"]) == 2
    assert response.headers["x-gateway-rag-passages-used"] == "3"
    assert response.headers["x-gateway-rag-passages-dropped"] == "0"
    assert response.headers["x-gateway-rag-turns-dropped"] == "0"
    message = response.json()["choices"][0]["message"]
    assert message["content"] == "tok0 tok1 tok2 "
    end = len(message["content"])
    assert [a["file_citation"]["file_id"] for a in message["annotations"]] == [
        "file-a",
        "file-b",
        "file-c",
    ]
    first = message["annotations"][0]
    assert first == {
        "type": "file_citation",
        "file_citation": {
            "file_id": "file-a",
            "filename": "guide.md",
            "index": end,
            "quote": "The gateway listens on port 8080.",
        },
    }
    assert response.headers["content-length"] == str(len(response.content))
    assert len(engine.seen.tokenized) == 1  # one count of the full prompt: it fits


async def test_streamed_answer_ends_with_an_annotations_chunk(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    gw, auth = guarded
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=body(QUESTION, stream=True))
    assert response.status_code == 200
    assert response.headers["x-gateway-rag-passages-used"] == "3"
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    final = payloads[-2]
    annotations = final["choices"][0]["delta"]["annotations"]
    assert [a["file_citation"]["filename"] for a in annotations] == [
        "guide.md",
        "faq.md",
        "old.md",
    ]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads[:-2])
    assert text == "tok0 tok1 tok2 "
    assert all(a["file_citation"]["index"] == len(text) for a in annotations)
    assert all("usage" not in p for p in payloads[:-1])  # the client did not ask for usage
    asked = engine.seen.bodies[0]["messages"][-1]["content"]
    assert asked[0]["text"].startswith("Use these sources") and asked[1:] == QUESTION["content"]


async def test_the_sdk_reads_citations_plain_streamed_and_accumulated(
    guarded: tuple[RunningGateway, dict[str, str]], sdk: SdkFactory, searches: Searches
) -> None:
    gw, auth = guarded
    client = sdk(gw, api_key=auth["authorization"].removeprefix("Bearer "))
    args: dict[str, Any] = {"model": "fake-model", "messages": [QUESTION], "tools": [TOOL]}
    reply = await client.chat.completions.create(**args)
    annotations = reply.choices[0].message.annotations or []
    assert [a.type for a in annotations] == ["file_citation"] * 3
    assert annotations[0].file_citation["file_id"] == "file-a"

    stream = await client.chat.completions.create(
        **args, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    cited = (chunks[-2].choices[0].delta.model_extra or {})["annotations"]
    assert [a["file_citation"]["file_id"] for a in cited] == ["file-a", "file-b", "file-c"]

    # The SDK's accumulating helper must not fuse citations (they carry no top-level index).
    async with client.chat.completions.stream(**args) as helper:
        final = await helper.get_final_completion()
    message = final.choices[0].message
    assert message.content == "tok0 tok1 tok2 "
    assert [a.file_citation["file_id"] for a in message.annotations or []] == [  # type: ignore[attr-defined]
        "file-a",
        "file-b",
        "file-c",
    ]


async def test_other_tools_are_forwarded(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    gw, auth = guarded
    payload = body(QUESTION, tool_choice="auto")
    payload["tools"] = [FUNCTION, TOOL]
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=payload)
    assert response.status_code == 200
    assert engine.seen.bodies[0]["tools"] == [FUNCTION]
    assert engine.seen.bodies[0]["tool_choice"] == "auto"
    assert engine.seen.tokenized[0]["tools"] == [FUNCTION]


async def test_a_small_window_drops_weak_passages_then_old_turns(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    gw, auth = guarded
    engine.behaviour.max_model_len = 160  # with max_tokens 50: 110 tokens of prompt
    history = [
        {"role": "user", "content": "old " * 40},
        {"role": "assistant", "content": "reply " * 40},
        {"role": "user", "content": "recent question"},
        {"role": "assistant", "content": "recent answer"},
    ]
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=body(SYSTEM, *history, QUESTION, max_tokens=50))
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-rag-passages-dropped"] == "1"  # the 200-word one
    assert response.headers["x-gateway-rag-turns-dropped"] == "1"
    assert response.headers["x-gateway-rag-passages-used"] == "2"
    sent = engine.seen.bodies[0]["messages"]
    assert sent[0] == SYSTEM
    assert [m["content"] for m in sent[1:3]] == ["recent question", "recent answer"]
    sources, *question = sent[3]["content"]
    assert question == QUESTION["content"]
    assert "[2] faq.md" in sources["text"] and "old.md" not in sources["text"]
    # The engine counted the final prompt, and it fits.
    last = engine.seen.tokenized[-1]
    assert last["messages"] == sent
    cited = response.json()["choices"][0]["message"]["annotations"]
    assert [a["file_citation"]["file_id"] for a in cited] == ["file-a", "file-b"]


async def test_a_prompt_that_cannot_fit_is_a_context_length_error(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    gw, auth = guarded
    engine.behaviour.max_model_len = 100
    question = {"role": "user", "content": "why " * 60}  # 64 tokens as the engine counts
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=body(SYSTEM, question, max_tokens=40))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    # system 4+3 words, question 4+60, generation 3: 74 + 40 completion = 114.
    assert error["message"].startswith("This model's maximum context length is 100 tokens.")
    assert "(74 in the messages, 40 in the completion): 14 tokens too many" in error["message"]
    assert engine.seen.bodies == []


class NoTokenizeEngine(FakeEngine):
    async def _tokenize(self, request: web.Request) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)


async def test_without_tokenize_the_gateway_estimates(
    gateway_factory: GatewayFactory, database_url: str, searches: Searches
) -> None:
    engine = await NoTokenizeEngine().start()
    try:
        engine.behaviour.max_model_len = 300  # learnt from the model card instead
        gw = await gateway_factory(
            upstreams=[engine.url], database_url=database_url, admin_key=ADMIN_KEY
        )
        async with gw.client(headers=(await create_key(gw, "k")).headers) as client:
            response = await client.post(CHAT, json=body(QUESTION, max_tokens=10))
        assert response.status_code == 200, response.text
        # ~4 characters a token: the 1,000-character passage cannot fit in 290 tokens.
        assert response.headers["x-gateway-rag-passages-dropped"] == "1"
        assert response.headers["x-gateway-rag-passages-used"] == "2"
    finally:
        await engine.stop()


async def test_malformed_tool_is_a_400_before_any_search(
    guarded: tuple[RunningGateway, dict[str, str]], searches: Searches
) -> None:
    gw, auth = guarded
    tool = {"type": "file_search", "vector_store_ids": "vs_docs"}
    async with gw.client(headers=auth) as client:
        response = await client.post(CHAT, json=body(QUESTION) | {"tools": [FUNCTION, tool]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools[1].vector_store_ids"
    assert response.headers["x-should-retry"] == "false"
    assert searches.calls == []


async def test_file_search_without_a_database_is_a_clear_error(
    gateway: RunningGateway, engine: FakeEngine, searches: Searches
) -> None:
    async with gateway.client() as client:
        response = await client.post(CHAT, json=body(QUESTION))
    assert response.status_code == 503 and response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "database_not_configured" and error["param"] == "tools[0]"
    assert "GATEWAY_DATABASE_URL" in error["message"]
    assert engine.seen.bodies == [] and searches.calls == []


async def test_plain_chat_costs_no_search_and_no_count(
    gateway: RunningGateway, engine: FakeEngine, searches: Searches
) -> None:
    async with gateway.client() as client:
        response = await client.post(
            CHAT, json={"model": "fake-model", "messages": [QUESTION], "tools": [FUNCTION]}
        )
    assert response.status_code == 200
    assert "x-gateway-rag-passages-used" not in response.headers
    assert engine.seen.tokenized == [] and searches.calls == []
    assert engine.seen.bodies[0]["tools"] == [FUNCTION]
    assert "annotations" not in response.json()["choices"][0]["message"]


def engine_count(messages: list[dict[str, Any]]) -> int:
    """What the fake engine's /tokenize says for these messages."""
    return TEMPLATE_TOKENS_GENERATION + sum(
        TEMPLATE_TOKENS_PER_MESSAGE + len(_words(m.get("content"))) for m in messages
    )


async def test_whatever_the_window_the_prompt_sent_fits_or_the_overflow_is_exact(
    guarded: tuple[RunningGateway, dict[str, str]], engine: FakeEngine, searches: Searches
) -> None:
    # Words of very different lengths: estimates at 4 characters a token are far off in
    # both directions, so fitting must lean on re-counting.
    searches.hits = [
        SearchHit("file-a", "a.md", 0.9, "a " * 60, {}, "vs"),
        SearchHit("file-b", "b.md", 0.8, "supercalifragilistic " * 6, {}, "vs"),
        SearchHit("file-c", "c.md", 0.7, "b c " * 25, {}, "vs"),
    ]
    history = [
        {"role": "user", "content": "x " * 30},
        {"role": "assistant", "content": "incomprehensibilities " * 4},
        {"role": "user", "content": "y " * 10},
        {"role": "assistant", "content": "z " * 10},
    ]
    question = {"role": "user", "content": "q " * 20}
    minimal = engine_count([SYSTEM, question])
    gw, auth = guarded
    async with gw.client(headers=auth) as client:
        for window in range(40, 400, 7):
            engine.behaviour.max_model_len = window
            engine.seen.bodies.clear()
            payload = body(SYSTEM, *history, question, max_tokens=10)
            payload["tools"][0] = {**TOOL, "max_num_results": 3}
            response = await client.post(CHAT, json=payload)
            if minimal + 10 > window:
                assert response.status_code == 400, (window, response.text)
                over = minimal + 10 - window
                assert f": {over} tokens too many" in response.json()["error"]["message"]
                continue
            assert response.status_code == 200, (window, response.text)
            sent = engine.seen.bodies[0]["messages"]
            assert engine_count(sent) + 10 <= window, window
            used = int(response.headers["x-gateway-rag-passages-used"])
            dropped = int(response.headers["x-gateway-rag-passages-dropped"])
            assert used + dropped == 3
            assert sent[0] == SYSTEM and sent[-1]["role"] == "user"
            asked = sent[-1]["content"]
            ends = asked == question["content"] if not used else asked.endswith(question["content"])
            assert ends and (used == 0) == ("Use these sources" not in asked)
