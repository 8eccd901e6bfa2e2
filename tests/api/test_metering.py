"""One cost per request: the usage event, `gateway_tokens_total` and the limiter's
settlement agree, also when the engine never said what the request used."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from gateway.admission.cost import prompt_estimate
from gateway.limits import Admission
from tests.admin import create_key
from tests.api.test_keys_limits_usage import usage_rows
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

CHAT = "/v1/chat/completions"
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "tell me a story " * 20}]}


class SettleSpy:
    """Records what the limiter was told each request used."""

    def __init__(self, gw: RunningGateway) -> None:
        self.actual: list[int | None] = []
        limiter = gw.storage.limiter
        assert limiter is not None
        real = limiter.settle

        async def settle(
            admission: Admission, actual_tokens: int | None, *, answered: bool = False
        ) -> None:
            self.actual.append(actual_tokens)
            await real(admission, actual_tokens, answered=answered)

        limiter.settle = settle  # type: ignore[method-assign]


def tokens_counted(gw: RunningGateway, kind: str) -> float:
    sample = gw.state.metrics.registry.get_sample_value(
        "gateway_tokens_total", {"model": "fake-model", "kind": kind}
    )
    return sample or 0.0


def raw(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)  # what the test client sends, byte for byte


async def wait_rows(gw: RunningGateway, database_url: str, n: int) -> list[tuple[Any, ...]]:
    for _ in range(100):
        await gw.storage.usage.flush()
        rows = usage_rows(database_url)
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} usage rows, got {usage_rows(database_url)}")


async def test_a_stream_cut_by_the_client_pays_its_prompt_and_what_it_received(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    spy = SettleSpy(gw)
    key = await create_key(gw, tpm=100_000)
    engine.behaviour.chunks = 200
    engine.behaviour.chunk_delay = 0.02
    body = {**BODY, "stream": True}
    received = 0
    async with (
        gw.client(headers=key.headers) as client,
        client.stream("POST", CHAT, content=raw(body)) as response,
    ):
        async for line in response.aiter_lines():
            received += line.startswith("data: ")
            if received == 5:
                break
    rows = await wait_rows(gw, database_url, 1)
    _, status, prompt, completion, streamed, cancelled = rows[0]
    assert (status, streamed, cancelled) == (200, True, True)
    # No usage chunk came: the prompt's estimate, not 0, and the chunks relayed.
    assert prompt == prompt_estimate(raw(body)) > 0
    assert 5 <= completion < 200
    assert spy.actual == [prompt + completion]
    assert tokens_counted(gw, "prompt") == prompt
    assert tokens_counted(gw, "completion") == completion


async def test_an_engine_dying_mid_stream_is_metered_as_far_as_it_got(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    spy = SettleSpy(gw)
    key = await create_key(gw, tpm=100_000)
    engine.behaviour.chunks = 50
    engine.behaviour.die_after_chunks = 6
    body = {**BODY, "stream": True}
    async with gw.client(headers=key.headers) as client:
        response = await client.post(CHAT, content=raw(body))
    assert response.status_code == 200
    assert '"upstream_disconnected"' in response.text  # the SDKs raise on it
    rows = await wait_rows(gw, database_url, 1)
    assert rows[0][1:4] == (200, prompt_estimate(raw(body)), 6)
    assert spy.actual == [rows[0][2] + rows[0][3]]


async def test_a_non_streamed_answer_abandoned_by_its_client_pays_its_reservation(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    spy = SettleSpy(gw)
    key = await create_key(gw, tpm=100_000)
    engine.behaviour.first_delay = 5  # the engine writes the whole answer before replying
    body = {**BODY, "max_tokens": 300, "n": 2}
    async with httpx.AsyncClient(base_url=gw.url, headers=key.headers, timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up
            await client.post(CHAT, content=raw(body))
    rows = await wait_rows(gw, database_url, 1)
    _, status, prompt, completion, streamed, cancelled = rows[0]
    assert (status, streamed, cancelled) == (499, False, True)
    # Nothing tells how far the engine got: leaving early must not make it free.
    assert (prompt, completion) == (prompt_estimate(raw(body)), 600)
    assert spy.actual == [prompt + completion]


async def test_an_engine_that_goes_silent_is_still_metered(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(read_timeout_s=0.3)
    key = await create_key(gw, tpm=100_000)
    engine.behaviour.first_delay = 2
    body = {**BODY, "max_tokens": 50}
    async with gw.client(headers=key.headers) as client:
        response = await client.post(CHAT, content=raw(body))
    assert response.status_code == 504
    rows = await wait_rows(gw, database_url, 1)
    # It reached the engine, which worked on it until the gateway gave up.
    assert rows[0][1:4] == (504, prompt_estimate(raw(body)), 50)


async def test_refused_requests_cost_nothing(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    spy = SettleSpy(gw)
    key = await create_key(gw, tpm=100_000)
    engine.behaviour.fail_status = 400
    async with gw.client(headers=key.headers) as client:
        response = await client.post(CHAT, content=raw(BODY))
    assert response.status_code == 400
    rows = await wait_rows(gw, database_url, 1)
    assert rows[0][1:4] == (400, 0, 0)
    assert spy.actual == [0]


async def test_usage_false_as_a_string_cannot_switch_metering_off(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory()
    key = await create_key(gw)
    body = {**BODY, "stream": True, "stream_options": {"include_usage": "false"}}
    async with gw.client(headers=key.headers) as client:
        response = await client.post(CHAT, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream_options.include_usage"
    assert engine.seen.bodies == []


async def test_n_is_capped_and_reserved_for_every_answer(
    engine: FakeEngine, keyed_factory: GatewayFactory, database_url: str
) -> None:
    gw = await keyed_factory(max_n=4)
    key = await create_key(gw, tpm=1000)
    large = {**BODY, "n": 4, "max_tokens": 300}
    async with gw.client(headers=key.headers) as client:
        too_many = await client.post(CHAT, json={**BODY, "n": 5})
        # 4 answers of 300 can never fit a tpm of 1000, though one of 300 would.
        too_large = await client.post(CHAT, content=raw(large))
        fits = await client.post(CHAT, json={**BODY, "n": 4, "max_tokens": 200})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "n"
    assert "from 1 to 4" in too_many.json()["error"]["message"]
    assert too_large.status_code == 429
    requested = prompt_estimate(raw(large)) + 4 * 300
    assert f"requested {requested}." in too_large.json()["error"]["message"]
    assert fits.status_code == 200
    assert [b.get("n") for b in engine.seen.bodies] == [4]
