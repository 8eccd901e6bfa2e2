"""Keys through the whole gateway (as wired in gateway.app) with the openai SDK."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.admin import ADMIN_KEY, admin_headers, create_key
from tests.conftest import GatewayFactory, SdkFactory
from tests.fakes.engine import FakeEngine

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_key_lifecycle_through_the_gateway(
    sdk: SdkFactory, engine: FakeEngine, gateway_factory: GatewayFactory, database_url: str
) -> None:
    gw = await gateway_factory(
        upstreams=[engine.url], database_url=database_url, admin_key=ADMIN_KEY
    )
    created = await create_key(gw, "sdk")
    secret = created.secret
    async with gw.client() as http:
        reply = await sdk(gw, api_key=secret).chat.completions.create(
            model="fake-model", messages=MESSAGES
        )
        assert reply.choices[0].message.content

        with pytest.raises(openai.AuthenticationError) as wrong:
            await sdk(gw, api_key="sk-gw-" + "x" * 43).models.list()
        assert wrong.value.code == "invalid_api_key"

        missing = await http.post(
            "/v1/chat/completions", json={"model": "fake-model", "messages": MESSAGES}
        )
        assert missing.status_code == 401
        assert missing.json()["error"]["message"].startswith("You didn't provide an API key")

        # The admin key works on /v1 too.
        await sdk(gw, api_key=ADMIN_KEY).chat.completions.create(
            model="fake-model", messages=MESSAGES
        )

        forbidden = await http.get("/admin/keys", headers={"authorization": f"Bearer {secret}"})
        assert forbidden.status_code == 403

        assert (
            await http.delete(f"/admin/keys/{created.id}", headers=admin_headers())
        ).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            await sdk(gw, api_key=secret).chat.completions.create(
                model="fake-model", messages=MESSAGES
            )
