"""Retrieval with a real embedding model: all-MiniLM-L6-v2 served by vLLM on the CPU."""

from __future__ import annotations

import io
from typing import Any

import pytest

from gateway.local.engine import Engine
from tests.admin import ADMIN_KEY
from tests.conftest import GatewayFactory, RunningGateway, SdkFactory
from tests.rag.citations import file_citations

CORPUS = {
    "volcanoes.md": "Mount Etna in Sicily is one of the most active volcanoes in the world. "
    "Its eruptions produce lava flows and ash clouds that close Catania airport.",
    "bread.md": "Sourdough bread rises thanks to a starter of wild yeast and lactic acid "
    "bacteria. Bakers feed the starter with flour and water every day.",
    "leave-policy.md": "Employees receive twenty-eight days of paid annual leave per year. "
    "Unused leave days can be carried over until the end of March.",
    "astronomy.md": "Jupiter is the largest planet of the solar system. Its Great Red Spot "
    "is a storm larger than the Earth that has lasted for centuries.",
    "chess.md": "In chess, castling moves the king two squares towards a rook, and the rook "
    "jumps over the king. It is the only move that moves two pieces.",
}


@pytest.fixture
async def rag_gateway(
    chat_engine: Engine,
    embedding_engine: Engine,
    database_url: str,
    gateway_factory: GatewayFactory,
) -> RunningGateway:
    return await gateway_factory(
        upstreams=[chat_engine.base_url, embedding_engine.base_url],
        database_url=database_url,
        admin_key=ADMIN_KEY,
        embedding_model=embedding_engine.model,
    )


async def test_the_document_with_the_answer_ranks_first(
    sdk: SdkFactory, rag_gateway: RunningGateway, chat_engine: Engine
) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="e2e-corpus")
    files = [(name, io.BytesIO(text.encode())) for name, text in CORPUS.items()]
    batch = await client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=files
    )
    assert batch.status == "completed" and batch.file_counts.completed == len(CORPUS)

    page = await client.vector_stores.search(
        vector_store_id=store.id,
        query="How many days of holiday do staff get each year?",
        max_num_results=3,
    )
    results = page.data
    assert results[0].filename == "leave-policy.md", [r.filename for r in results]
    assert 0 < results[-1].score <= results[0].score <= 1

    # The same question through chat with the file_search tool: the answer cites it.
    # The gateway's own tool for chat: not one of the SDK's types.
    chat_file_search: Any = {
        "type": "file_search",
        "vector_store_ids": [store.id],
        "max_num_results": 2,
    }
    reply = await client.chat.completions.create(
        model=chat_engine.model,
        messages=[{"role": "user", "content": "How many days of paid leave do employees get?"}],
        tools=[chat_file_search],
        max_tokens=32,
    )
    # The SDK parses `annotations` with its own (url_citation) type, keeping extra fields.
    message = reply.choices[0].message.model_dump()
    cited = [a["file_citation"]["filename"] for a in message.get("annotations") or []]
    assert "leave-policy.md" in cited

    # And through the Responses API: the search call, the answer and its citations.
    response = await client.responses.create(
        model=chat_engine.model,
        input="How many days of paid leave do employees get?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id], "max_num_results": 2}],
        include=["file_search_call.results"],
        max_output_tokens=32,
    )
    call, answer = response.output
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.results and call.results[0].filename == "leave-policy.md"
    assert answer.type == "message" and response.output_text.strip()
    assert "leave-policy.md" in [a.filename for a in file_citations(answer)]
    assert response.usage and response.usage.output_tokens > 0
