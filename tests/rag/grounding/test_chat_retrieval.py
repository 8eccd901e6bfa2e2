"""file_search chats end to end: a file uploaded, ingested into a vector store (real
Postgres + pgvector, the fake embedder), found by the chat's last user turn, and cited."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from openai.types.chat import ChatCompletionMessageParam

from tests.admin import create_key
from tests.conftest import SdkFactory
from tests.fakes.engine import FakeEngine
from tests.rag.conftest import RagFactory, age_stores

GUIDE = (
    b"Installing the gateway.\n\nThe gateway listens on port 8080 unless GATEWAY_PORT says "
    b"otherwise. Its metrics are served at /metrics for Prometheus.\n"
)
RECIPE = b"Baking bread.\n\nKnead the dough for ten minutes, then let it rise for an hour.\n"


async def ingested(client: Any, files: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    ids = {}
    for name, content in files.items():
        uploaded = await client.files.create(file=(name, content), purpose="assistants")
        ids[name] = uploaded.id
    store = await client.vector_stores.create(name="docs", file_ids=list(ids.values()))
    for _ in range(200):
        store = await client.vector_stores.retrieve(store.id)
        if store.file_counts.completed == len(files):
            return store.id, ids
        assert store.file_counts.failed == 0
        await asyncio.sleep(0.05)
    raise AssertionError(f"ingestion did not finish: {store.file_counts}")


async def test_a_question_is_answered_from_the_store_and_cited(
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
    question: ChatCompletionMessageParam = {
        "role": "user",
        "content": "Which port does the gateway listen on?",
    }
    raw = await client.chat.completions.with_raw_response.create(
        model="fake-model",
        messages=[{"role": "system", "content": "Be brief."}, question],
        tools=[tool],  # type: ignore[list-item]
    )
    assert raw.headers["x-gateway-rag-passages-used"] == "1"
    assert raw.headers["x-gateway-rag-passages-dropped"] == "0"
    reply = raw.parse()
    sent = chat_engine.seen.bodies[0]
    assert "tools" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    asked = sent["messages"][1]["content"]
    assert asked.startswith("Use these sources") and asked.endswith(question["content"])
    assert "[1] guide.md: " in asked and "listens on port 8080" in asked
    assert "bread" not in asked.lower()
    annotations = reply.choices[0].message.annotations or []
    assert len(annotations) == 1
    citation = annotations[0].file_citation  # type: ignore[attr-defined]
    assert citation["file_id"] == ids["guide.md"] and citation["filename"] == "guide.md"
    assert "listens on port 8080" in citation["quote"]
    assert chat_engine.seen.tokenized  # counted by the chat model's engine, not the embedder


async def test_a_stream_cites_the_store_before_done(
    rag_factory: RagFactory,
    database_url: str,
    chat_engine: FakeEngine,
    embedder: Any,
    sdk: SdkFactory,
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = (await create_key(gw)).secret
    store_id, ids = await ingested(sdk(gw, api_key=key), {"bread.md": RECIPE})
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "How long should dough rise?"}],
        "tools": [{"type": "file_search", "vector_store_ids": [store_id]}],
        "stream": True,
    }
    async with gw.client(headers={"authorization": f"Bearer {key}"}) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    final = orjson.loads(events[-2].removeprefix("data: "))
    cited = final["choices"][0]["delta"]["annotations"]
    assert [a["file_citation"]["file_id"] for a in cited] == [ids["bread.md"]]


async def test_a_store_of_another_owner_or_none_is_a_404_naming_the_tool(
    rag_factory: RagFactory, database_url: str, chat_engine: FakeEngine, embedder: Any
) -> None:
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = (await create_key(gw)).secret
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "anything"}],
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_missing"]}],
    }
    async with gw.client(headers={"authorization": f"Bearer {key}"}) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "tools[0].vector_store_ids"
    assert chat_engine.seen.bodies == []


async def test_an_expired_store_is_a_400_naming_the_tool(
    rag_factory: RagFactory,
    database_url: str,
    chat_engine: FakeEngine,
    embedder: Any,
    sdk: SdkFactory,
) -> None:
    """One expired store of several fails the chat, named, rather than being left out."""
    gw = await rag_factory(database_url, upstreams=[embedder.url, chat_engine.url])
    key = (await create_key(gw)).secret
    client = sdk(gw, api_key=key)
    lasting, _ = await ingested(client, {"guide.md": GUIDE})
    fleeting = await client.vector_stores.create(
        name="fleeting",
        expires_after={"anchor": "last_active_at", "days": 1},
    )
    age_stores(database_url, 2, fleeting.id)
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "Which port?"}],
        "tools": [{"type": "file_search", "vector_store_ids": [lasting, fleeting.id]}],
    }
    async with gw.client(headers={"authorization": f"Bearer {key}"}) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "vector_store_expired" and fleeting.id in error["message"]
    assert error["param"] == "tools[0].vector_store_ids"
    assert chat_engine.seen.bodies == []
