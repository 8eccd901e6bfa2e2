"""The openai SDK, unmodified, against a real gateway: files, vector stores, store files,
batches, search with filters, paging, deletion."""

from __future__ import annotations

import io

import openai
import pytest

from tests.admin import ADMIN_KEY
from tests.conftest import RunningGateway, SdkFactory

DOCS = {
    "billing.md": "# Billing\n\nInvoices are sent on the first day of each month. "
    "Refunds for damaged goods are paid within fourteen days.",
    "garden.txt": "Tomatoes need full sun and deep watering twice a week. "
    "Prune the suckers to keep the plants productive.",
    "network.html": "<html><body><h1>Router</h1><p>The router admin page lives at "
    "192.168.1.1 and the wifi password is on the sticker.</p>"
    "<script>ignored()</script></body></html>",
}


def upload(name: str, text: str) -> tuple[str, io.BytesIO]:
    return name, io.BytesIO(text.encode())


async def test_files_round_trip(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    created = await client.files.create(file=upload("a.txt", "hello world"), purpose="assistants")
    assert created.id.startswith("file-") and created.bytes == 11
    assert created.filename == "a.txt" and created.purpose == "assistants"
    assert (await client.files.retrieve(created.id)).id == created.id
    content = await client.files.content(created.id)
    assert content.read() == b"hello world"
    listed = [f.id async for f in client.files.list(purpose="assistants")]
    assert listed == [created.id]
    assert [f.id async for f in client.files.list(purpose="batch")] == []
    deleted = await client.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(created.id)


async def test_bad_purpose_is_a_400(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    with pytest.raises(openai.BadRequestError) as info:
        await client.files.create(file=upload("a.txt", "x"), purpose="nonsense")  # type: ignore[arg-type]
    assert info.value.body["param"] == "purpose"  # type: ignore[index]


async def test_ingest_and_search_with_filters(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="home", metadata={"team": "ops"})
    assert store.status == "completed" and store.file_counts.total == 0
    kinds = {"billing.md": "finance", "garden.txt": "hobby", "network.html": "it"}
    for year, (name, text) in enumerate(DOCS.items(), start=2023):
        done = await client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id,
            file=upload(name, text),
            attributes={"kind": kinds[name], "year": year},
        )
        assert done.status == "completed", done.last_error
        assert done.attributes == {"kind": kinds[name], "year": year}
        assert done.chunking_strategy.type == "static"  # type: ignore[union-attr]
    store = await client.vector_stores.retrieve(store.id)
    assert store.file_counts.completed == 3 and store.usage_bytes > 0

    # rewrite_query is accepted; the query is searched as written, and the answer says so.
    page = await client.vector_stores.search(
        store.id, query="refunds for damaged goods", rewrite_query=True
    )
    assert page.search_query == ["refunds for damaged goods"]  # type: ignore[attr-defined]
    hits = page.data
    assert hits[0].filename == "billing.md" and 0 < hits[0].score <= 1
    assert "fourteen days" in hits[0].content[0].text

    only_hobby = await client.vector_stores.search(
        store.id,
        query="refunds for damaged goods",
        filters={"type": "eq", "key": "kind", "value": "hobby"},
    )
    assert [h.filename for h in only_hobby.data] == ["garden.txt"]
    recent = await client.vector_stores.search(
        store.id,
        query="router password",
        filters={
            "type": "and",
            "filters": [
                {"type": "gte", "key": "year", "value": 2024},
                {"type": "nin", "key": "kind", "value": ["hobby"]},
            ],
        },
    )
    assert [h.filename for h in recent.data] == ["network.html"]
    assert "ignored()" not in recent.data[0].content[0].text
    either = await client.vector_stores.search(
        store.id,
        query="anything",
        filters={
            "type": "or",
            "filters": [
                {"type": "eq", "key": "kind", "value": "it"},
                {"type": "lt", "key": "year", "value": 2024},
            ],
        },
        max_num_results=10,
    )
    assert {h.filename for h in either.data} == {"network.html", "billing.md"}
    strict = await client.vector_stores.search(
        store.id, query="tomatoes sun", ranking_options={"score_threshold": 0.99}
    )
    assert all(h.score >= 0.99 for h in strict.data)

    with pytest.raises(openai.BadRequestError):
        await client.vector_stores.search(
            # An operator the API does not have: the gateway must refuse it, not the SDK.
            store.id,
            query="x",
            filters={"type": "like", "key": "kind", "value": "a"},  # type: ignore[arg-type]
        )


async def test_store_files_batches_update_and_delete(
    rag_gateway: RunningGateway, sdk: SdkFactory
) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="batchy")
    batch = await client.vector_stores.file_batches.upload_and_poll(
        store.id, files=[upload(name, text) for name, text in DOCS.items()]
    )
    assert batch.status == "completed" and batch.file_counts.completed == 3
    batch_files = [
        f
        async for f in client.vector_stores.file_batches.list_files(
            batch.id, vector_store_id=store.id
        )
    ]
    assert len(batch_files) == 3
    first = batch_files[0]
    updated = await client.vector_stores.files.update(
        first.id, vector_store_id=store.id, attributes={"pinned": True}
    )
    assert updated.attributes == {"pinned": True}
    pinned = await client.vector_stores.search(
        store.id, query="tomatoes", filters={"type": "eq", "key": "pinned", "value": True}
    )
    assert {h.file_id for h in pinned.data} == {first.id}
    content = [
        c async for c in client.vector_stores.files.content(first.id, vector_store_id=store.id)
    ]
    assert content and content[0].type == "text"

    completed = [f async for f in client.vector_stores.files.list(store.id, filter="completed")]
    assert len(completed) == 3
    assert [f async for f in client.vector_stores.files.list(store.id, filter="failed")] == []
    gone = await client.vector_stores.files.delete(first.id, vector_store_id=store.id)
    assert gone.deleted
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.files.retrieve(first.id, vector_store_id=store.id)
    assert (await client.files.retrieve(first.id)).id == first.id  # the file itself stays
    store = await client.vector_stores.retrieve(store.id)
    assert store.file_counts.total == 2

    deleted = await client.vector_stores.delete(store.id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.retrieve(store.id)


async def test_paging_and_update(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    ids = [(await client.vector_stores.create(name=f"s{i}")).id for i in range(5)]
    newest_first = list(reversed(ids))
    page = await client.vector_stores.list(limit=2)
    assert [s.id for s in page.data] == newest_first[:2] and page.has_more
    assert [s.id async for s in client.vector_stores.list(limit=2)] == newest_first
    asc = await client.vector_stores.list(limit=3, order="asc", after=ids[0])
    assert [s.id for s in asc.data] == ids[1:4]
    before = await client.vector_stores.list(limit=2, before=ids[1])
    assert [s.id for s in before.data] == [ids[3], ids[2]]

    renamed = await client.vector_stores.update(
        ids[0], name="renamed", expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert renamed.name == "renamed" and renamed.expires_after.days == 7  # type: ignore[union-attr]
    assert renamed.expires_at is not None
    with pytest.raises(openai.BadRequestError):
        await client.vector_stores.list(limit=500)
