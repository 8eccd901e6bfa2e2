"""Anthropic Messages through the gateway with the official `anthropic` SDK and with a
request shaped as Claude Code sends it, against the fake engine (vLLM's shapes)."""

from __future__ import annotations

from anthropic.types import MessageParam, ToolParam

from tests.conftest import Client, GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


async def test_sdk_plain_message(
    claude: Client, gateway: RunningGateway, engine: FakeEngine
) -> None:
    message = await claude(gateway).messages.create(
        model="fake-model", max_tokens=64, messages=MESSAGES
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "tok0 tok1 tok2 "
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    # The SDK's version header reaches the engine; the client's key does not.
    seen = engine.seen.headers[0]
    assert seen["anthropic-version"]  # the SDK's own date
    assert "x-api-key" not in seen and "authorization" not in seen


async def test_sdk_stream(claude: Client, gateway: RunningGateway, engine: FakeEngine) -> None:
    async with claude(gateway).messages.stream(
        model="fake-model", max_tokens=64, messages=MESSAGES
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "tok0 tok1 tok2 "
    assert final.usage.output_tokens == 3 and final.stop_reason == "max_tokens"
    assert engine.seen.bodies[0]["stream"] is True


async def test_sdk_tool_use(claude: Client, gateway: RunningGateway) -> None:
    message = await claude(gateway).messages.create(
        model="fake-model",
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"location": "Paris"}
    async with claude(gateway).messages.stream(
        model="fake-model",
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"location": "Paris"}


async def test_sdk_count_tokens(
    claude: Client, gateway: RunningGateway, engine: FakeEngine
) -> None:
    counted = await claude(gateway).messages.count_tokens(
        model="fake-model",
        system="Be brief.",
        messages=[{"role": "user", "content": "one two three"}],
    )
    assert counted.input_tokens == 5
    assert engine.seen.bodies[0]["system"] == "Be brief."


async def test_claude_code_shaped_request(
    engine: FakeEngine, gateway_factory: GatewayFactory
) -> None:
    """What Claude Code sends (its beta client: `?beta=true`, beta headers, system blocks
    with cache_control, tools, thinking, metadata), under a dated claude-* model name
    that a prefix alias maps to the local model."""
    gw = await gateway_factory(upstreams=[engine.url], model_aliases={"claude-*": "fake-model"})
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "list the files",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "Run a shell command",
                "input_schema": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
            }
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_abc_account__session_123"},
        "temperature": 1,
    }
    headers = {
        "x-api-key": "unused",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "user-agent": "claude-cli/2.0.0 (external, cli)",
        "x-stainless-lang": "js",
    }
    async with gw.client() as client:
        response = await client.post("/v1/messages?beta=true", json=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    sent = engine.seen.bodies[0]
    assert sent["model"] == "fake-model"  # the alias, resolved
    assert {k: v for k, v in sent.items() if k != "model"} == {
        k: v for k, v in body.items() if k != "model"
    }
    seen = engine.seen.headers[0]
    assert seen["anthropic-beta"] == headers["anthropic-beta"]
    assert seen["anthropic-version"] == "2023-06-01"
    # Prefix aliases route; they are not models to list.
    async with gw.client() as client:
        listed = (await client.get("/v1/models")).json()["data"]
    assert [m["id"] for m in listed] == ["fake-model"]
