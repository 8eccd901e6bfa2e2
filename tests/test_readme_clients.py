"""The README's client recipes (Claude Code, the anthropic SDK, curl for tokenize and
rerank) run as written, against fake engines serving the models `gateway up` serves; only
the address and the key are the test's. The real-engine suite runs the same calls against
vLLM (tests/e2e/test_anthropic_vllm.py)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import anthropic
import yaml

from tests.admin import ADMIN_KEY, create_key
from tests.api.test_metering import wait_rows
from tests.conftest import GatewayFactory, RunningGateway
from tests.fakes.engine import FakeEngine

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CHAT_MODEL, EMBEDDING_MODEL = "smollm2-135m-instruct", "all-minilm-l6-v2"
README_URL, README_KEY = "http://127.0.0.1:8080", "sk-gw-..."


def section(title: str) -> str:
    """A section's text, up to the next heading of its level or above (outside code)."""
    lines = README.splitlines(keepends=True)
    start = next(
        i for i, line in enumerate(lines) if re.fullmatch(rf"#+ {re.escape(title)}\n", line)
    )
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    in_code = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start + 1 : end])
    return "".join(lines[start + 1 :])


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def json_values(text: str) -> list[Any]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


async def run(*argv: str, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def stack(
    factory: GatewayFactory, database_url: str
) -> tuple[RunningGateway, str, FakeEngine]:
    """A gateway with the README's aliases in front of an engine serving `gateway up`'s
    chat model."""
    chat = await FakeEngine(CHAT_MODEL).start()
    aliases = yaml.safe_load(blocks(section("Claude Code and the Anthropic SDK"), "yaml")[0])
    gw = await factory(
        upstreams=[chat.url],
        database_url=database_url,
        admin_key=ADMIN_KEY,
        model_aliases=aliases["model_aliases"],
    )
    return gw, (await create_key(gw, tpm=1_000_000)).secret, chat


async def test_the_anthropic_sdk_recipe(gateway_factory: GatewayFactory, database_url: str) -> None:
    gw, key, chat = await stack(gateway_factory, database_url)
    try:
        code = blocks(section("The `anthropic` SDK"), "python")[0]
        code = code.replace(README_URL, gw.url).replace(README_KEY, key)
        out = await run(sys.executable, "-c", code)
    finally:
        await chat.stop()
    lines = out.splitlines()
    assert lines[0] == "tok0 tok1 tok2  7 3"  # text, input and output tokens
    assert lines[1:] == ["tok0 tok1 tok2 ", "1"]  # the stream, then count_tokens' count
    assert [b["model"] for b in chat.seen.bodies] == [CHAT_MODEL] * 3
    rows = await wait_rows(gw, database_url, 3)
    assert [r[2:4] for r in rows] == [(7, 3), (7, 3), (0, 0)]


async def test_the_claude_code_recipe(gateway_factory: GatewayFactory, database_url: str) -> None:
    """`claude` itself is an npm package this machine does not have: its environment is
    read from the README and used as Claude Code uses it (the SDK's beta client, which adds
    `?beta=true`, the key as a bearer token, a dated claude-* model)."""
    gw, key, chat = await stack(gateway_factory, database_url)
    command = shlex.split(blocks(section("Claude Code"), "bash")[0].strip())
    env = dict(word.split("=", 1) for word in command[:-1])
    assert command[-1] == "claude" and set(env) == {"ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"}
    assert env["ANTHROPIC_BASE_URL"] == README_URL and env["ANTHROPIC_AUTH_TOKEN"] == README_KEY
    client = anthropic.AsyncAnthropic(
        base_url=env["ANTHROPIC_BASE_URL"].replace(README_URL, gw.url),
        auth_token=env["ANTHROPIC_AUTH_TOKEN"].replace(README_KEY, key),
        api_key=None,
        max_retries=0,
    )
    try:
        async with client.beta.messages.stream(
            model="claude-haiku-4-5-20251001",
            max_tokens=8192,
            system=[{"type": "text", "text": "You are Claude Code."}],
            messages=[{"role": "user", "content": "hi"}],
            betas=["claude-code-20250219"],
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
        counted = await client.beta.messages.count_tokens(
            model="claude-haiku-4-5-20251001", messages=[{"role": "user", "content": "a b c"}]
        )
    finally:
        await client.close()
        await chat.stop()
    assert text == "tok0 tok1 tok2 " and counted.input_tokens == 3
    assert chat.seen.headers[0]["anthropic-beta"] == "claude-code-20250219"
    rows = await wait_rows(gw, database_url, 2)
    assert [r[2:5] for r in rows] == [(7, 3, True), (0, 0, False)]


async def test_the_curl_recipes_for_tokenize_and_rerank(
    gateway_factory: GatewayFactory, database_url: str
) -> None:
    chat = await FakeEngine(CHAT_MODEL).start()
    embedding = await FakeEngine(EMBEDDING_MODEL).start()
    try:
        gw = await gateway_factory(
            upstreams=[chat.url, embedding.url], database_url=database_url, admin_key=ADMIN_KEY
        )
        key = (await create_key(gw)).secret
        routes = section("vLLM's other routes: tokenize, rerank, score, pooling, classify, audio")
        script = blocks(routes, "bash")[0]
        out = await run(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            script.replace(README_URL, gw.url),
            env={"KEY": key, "PATH": "/usr/bin:/bin"},
        )
    finally:
        await chat.stop()
        await embedding.stop()
    tokenized, reranked = json_values(out)
    assert tokenized["count"] == 2  # the fake's words
    assert [r["index"] for r in reranked["results"]] == [0, 1]
    assert chat.seen.tokenized[0]["model"] == CHAT_MODEL
    assert embedding.seen.bodies[0]["model"] == EMBEDDING_MODEL
    rows = await wait_rows(gw, database_url, 2)
    assert [r[2] for r in rows] == [0, 13]  # tokenize costs nothing; rerank its prompt
