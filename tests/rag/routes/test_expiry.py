"""An expired vector store is no longer used (OpenAI: "no longer available for use"): search
and new files are refused with a 400 that says how to revive it; it stays readable, its
documents are kept, and a search does not revive it. Setting `expires_after` again does."""

from __future__ import annotations

import io

import openai
import pytest

from tests.admin import ADMIN_KEY
from tests.conftest import RunningGateway, SdkFactory
from tests.rag.conftest import age_stores

ONE_DAY = {"anchor": "last_active_at", "days": 1}


async def test_an_expired_store_is_refused_until_revived(
    rag_gateway: RunningGateway, sdk: SdkFactory, database_url: str
) -> None:
    client = sdk(rag_gateway, api_key=ADMIN_KEY)
    store = await client.vector_stores.create(name="trip", expires_after=ONE_DAY)  # type: ignore[arg-type]
    done = await client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("plan.txt", io.BytesIO(b"The ferry to the island leaves at seven.")),
    )
    assert done.status == "completed"
    query = "when does the ferry leave"
    assert (await client.vector_stores.search(store.id, query=query)).data

    age_stores(database_url, 2, store.id)
    assert (await client.vector_stores.retrieve(store.id)).status == "expired"
    with pytest.raises(openai.BadRequestError) as info:
        await client.vector_stores.search(store.id, query=query)
    error = info.value.body
    assert error["code"] == "vector_store_expired"  # type: ignore[index]
    assert error["param"] == "vector_store_ids" and "expires_after" in error["message"]  # type: ignore[index]
    # New files are refused, one at a time or in a batch; what it holds can still be read.
    other = await client.files.create(file=("b.txt", io.BytesIO(b"b")), purpose="assistants")
    with pytest.raises(openai.BadRequestError, match="expired"):
        await client.vector_stores.files.create(vector_store_id=store.id, file_id=other.id)
    with pytest.raises(openai.BadRequestError, match="expired"):
        await client.vector_stores.file_batches.create(
            vector_store_id=store.id, file_ids=[other.id]
        )
    assert [f.id async for f in client.vector_stores.files.list(store.id)] == [done.id]
    # The refused search did not count as activity.
    assert (await client.vector_stores.retrieve(store.id)).status == "expired"

    revived = await client.vector_stores.update(store.id, expires_after=ONE_DAY)  # type: ignore[arg-type]
    assert revived.status == "completed"
    hits = (await client.vector_stores.search(store.id, query=query)).data
    assert hits and "seven" in hits[0].content[0].text
