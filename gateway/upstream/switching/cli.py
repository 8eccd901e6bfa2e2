"""`gateway engines sleep MODEL`: put an engine of a group to sleep from the command line.

The compose profile with an engine group runs it once, between its engines' starts: vLLM
sizes its memory from what is free when it starts, so the next engine of the group may only
start once the one before sleeps. It reads the groups from the same settings the gateway
does (GATEWAY_ENGINE_GROUPS), so the URL and sleep level are written down once.
"""

from __future__ import annotations

import asyncio

import aiohttp
import click

from gateway.cli_settings import load_settings
from gateway.errors import UpstreamUnavailable
from gateway.upstream.switching.backends import SleepApi
from gateway.upstream.switching.config import EngineGroup, GroupEngine

_TIMEOUT = aiohttp.ClientTimeout(total=300)  # a level-1 sleep copies the weights to host RAM
_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)


@click.group("engines")
def engines() -> None:
    """Engines of the configured engine groups (GATEWAY_ENGINE_GROUPS)."""


@engines.command("sleep")
@click.argument("model")
@click.option(
    "--first-start",
    is_flag=True,
    help="Only if no other engine of the group answers yet: the step of a first start that "
    "makes room for the next engine. Once they all run, the gateway decides who sleeps.",
)
def sleep(model: str, first_start: bool) -> None:
    """Put the engine serving MODEL to sleep, at its group's sleep level."""
    settings = load_settings()
    group, engine = _find(settings.engine_groups, model)
    if engine.control != "sleep":
        raise click.ClickException(
            f"{model} is a `{engine.control}` engine: the gateway starts and stops it itself"
        )
    message = asyncio.run(_sleep(group, engine, first_start))
    click.echo(message)


def _find(groups: list[EngineGroup], model: str) -> tuple[EngineGroup, GroupEngine]:
    for group in groups:
        for engine in group.engines:
            if engine.model == model:
                return group, engine
    served = [e.model for g in groups for e in g.engines]
    raise click.ClickException(
        f"no engine group serves {model!r} (GATEWAY_ENGINE_GROUPS lists: "
        f"{', '.join(served) or 'nothing'})"
    )


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url + "/health", timeout=_PROBE_TIMEOUT) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _sleep(group: EngineGroup, engine: GroupEngine, first_start: bool) -> str:
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        if first_start:
            others = [e.url for e in group.engines if e.url != engine.url]
            up = [url for url in others if await _answers(session, url)]
            if up:
                return f"{', '.join(up)} already up: not a first start, {engine.url} left as it is"
        # /sleep and /is_sleeping are outside vLLM's --api-key check (it guards /v1 only).
        try:
            await SleepApi(session, engine, {}).sleep()
        except UpstreamUnavailable as exc:
            raise click.ClickException(f"{engine.url} would not sleep: {exc}") from exc
    return f"{engine.url} ({engine.model}) asleep, level {engine.sleep_level}"
