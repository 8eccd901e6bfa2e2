"""Every file and store belongs to its key's owner; other keys get 404 and see nothing."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from gateway.errors import NotFound
from gateway.keys.record import KeyRecord
from gateway.rag.metering import SEARCH_ROUTE, Payer
from gateway.rag.search.hybrid import search_stores
from tests.admin import ADMIN_KEY, create_key
from tests.conftest import RunningGateway, SdkFactory
from tests.rag.conftest import RagFactory


async def test_keys_only_reach_their_own_data(rag_gateway: RunningGateway, sdk: SdkFactory) -> None:
    alice = sdk(rag_gateway, api_key=(await create_key(rag_gateway, "alice")).secret)
    bob = sdk(rag_gateway, api_key=(await create_key(rag_gateway, "bob")).secret)
    admin = sdk(rag_gateway, api_key=ADMIN_KEY)

    store = await alice.vector_stores.create(name="private")
    done = await alice.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("secret.txt", io.BytesIO(b"the vault code is 1234"))
    )
    assert done.status == "completed"
    hits = await alice.vector_stores.search(store.id, query="vault code")
    assert hits.data and hits.data[0].file_id == done.id

    # Bob sees none of it: not listed, and every direct access is a 404.
    assert [f async for f in bob.files.list()] == []
    assert [s async for s in bob.vector_stores.list()] == []
    for call in (
        bob.files.retrieve(done.id),
        bob.files.content(done.id),
        bob.files.delete(done.id),
        bob.vector_stores.retrieve(store.id),
        bob.vector_stores.update(store.id, name="mine now"),
        bob.vector_stores.delete(store.id),
        bob.vector_stores.files.retrieve(done.id, vector_store_id=store.id),
        bob.vector_stores.files.create(vector_store_id=store.id, file_id=done.id),
        bob.vector_stores.search(store.id, query="vault code"),
    ):
        with pytest.raises(openai.NotFoundError):
            await call
    # Nor can he pull Alice's file into a store of his own.
    own = await bob.vector_stores.create(name="bob's")
    with pytest.raises(openai.NotFoundError):
        await bob.vector_stores.files.create(vector_store_id=own.id, file_id=done.id)
    with pytest.raises(openai.NotFoundError):
        await bob.vector_stores.file_batches.create(own.id, file_ids=[done.id])

    # The search function the chat tool uses applies the same rule.
    bob_key = Payer(KeyRecord(id="k-bob", name="bob", owner="someone-else"), SEARCH_ROUTE, "r")
    with pytest.raises(NotFound):
        await search_stores(rag_gateway.retrieval, bob_key, [store.id], "vault")
    with pytest.raises(NotFound):
        await search_stores(rag_gateway.retrieval, bob_key, [own.id, "vs_missing"], "vault")

    # The admin sees every owner's.
    assert {s.id async for s in admin.vector_stores.list()} == {store.id, own.id}
    assert (await admin.files.retrieve(done.id)).id == done.id
    admin_hits = await search_stores(
        rag_gateway.retrieval, Payer(None, SEARCH_ROUTE, "r"), [store.id], "vault code"
    )
    assert admin_hits[0].file_id == done.id and admin_hits[0].vector_store_id == store.id
    assert (await admin.vector_stores.delete(store.id)).deleted


async def test_without_a_database_retrieval_says_what_it_needs(
    rag_factory: RagFactory, sdk: SdkFactory
) -> None:
    gw = await rag_factory(None)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        for method, path in (
            ("GET", "/v1/files"),
            ("POST", "/v1/vector_stores"),
            ("POST", "/v1/vector_stores/vs_x/search"),
        ):
            response = await client.request(method, path, json={})
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert "GATEWAY_DATABASE_URL" in error["message"]
            assert response.headers.get("x-should-retry") == "false"
