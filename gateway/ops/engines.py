"""`GET /admin/engines`: each engine as the registry sees it, plus its own vLLM gauges.

The registry gives health, models, requests in flight through this gateway and the last
error; each engine's Prometheus `/metrics` adds what only the engine knows (requests running
and waiting in its scheduler, KV-cache use). Scrapes run concurrently with a short timeout,
and an engine without `/metrics` (or a slow one) simply has no gauges.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import aiohttp
from fastapi import APIRouter, Depends

from gateway.keys.require_admin import require_admin
from gateway.state import StateDep
from gateway.upstream.engines import Engines
from gateway.upstream.registry import Upstream

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

SCRAPE_TIMEOUT_S = 1.5
# vLLM's gauge names. `gpu_cache_usage_perc` is the older name (some versions export both,
# so it only counts when the new one is absent); both are a fraction in [0, 1].
GAUGES = {
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage_legacy",
}
_MAX_METRICS_BYTES = 4 * 1024 * 1024


# name, optional {labels} (greedy: a label value may hold braces), value, optional timestamp
_SAMPLE = re.compile(r"^(vllm:[A-Za-z0-9_:]+)(?:\{.*\})?\s+(\S+)")


def parse_gauges(exposition: str) -> dict[str, float]:
    """The vLLM gauges in a Prometheus text exposition, summed over their label sets
    (one engine may report per model or per engine core). Pure; other lines are skipped."""
    found: dict[str, float] = {}
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match is None or (field := GAUGES.get(match.group(1))) is None:
            continue
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        if math.isfinite(value):
            found[field] = found.get(field, 0.0) + value
    return found


async def scrape(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout_s: float
) -> tuple[dict[str, float], str | None]:
    """(gauges, why there are none); never raises for a bad or absent endpoint."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.get(url + "/metrics", headers=headers, timeout=timeout) as response:
            if response.status != 200:
                return {}, f"/metrics answered {response.status}"
            body = await response.content.read(_MAX_METRICS_BYTES)
    except TimeoutError:
        return {}, f"/metrics did not answer within {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        return {}, f"/metrics unreachable ({type(exc).__name__})"
    return parse_gauges(body.decode("utf-8", "replace")), None


def _engine_view(
    upstream: Upstream, gauges: dict[str, float], why: str | None, state: str | None
) -> dict[str, Any]:
    running = gauges.get("requests_running")
    waiting = gauges.get("requests_waiting")
    kv = gauges.get("kv_cache_usage", gauges.get("kv_cache_usage_legacy"))
    return {
        "object": "engine",
        "url": upstream.url,
        "healthy": upstream.healthy,
        "models": sorted(n for n, card in upstream.models.items() if not card.get("parent")),
        # LoRA adapters loaded there (vLLM lists them as models with a `parent`).
        "adapters": sorted(n for n, card in upstream.models.items() if card.get("parent")),
        # In an engine group: its group and awake|asleep|waking; None outside groups.
        "group": upstream.group,
        "state": state,
        "in_flight": upstream.in_flight,
        "last_error": upstream.last_error,
        "requests_running": None if running is None else int(running),
        "requests_waiting": None if waiting is None else int(waiting),
        "kv_cache_usage": None if kv is None else round(kv, 4),
        "metrics_error": why,
    }


async def engines_report(engines: Engines, timeout_s: float = SCRAPE_TIMEOUT_S) -> list[Any]:
    headers = engines.headers("engines-report")
    upstreams = list(engines.registry.upstreams)
    scrapes = await asyncio.gather(
        *(scrape(engines.session, u.url, headers, timeout_s) for u in upstreams)
    )
    switcher = engines.switcher
    return [
        _engine_view(u, g, why, switcher.status(u) if switcher else None)
        for u, (g, why) in zip(upstreams, scrapes, strict=True)
    ]


@router.get("/engines")
async def list_engines(state: StateDep) -> dict[str, Any]:
    switcher = state.engines.switcher
    # The engine groups' last switches, newest first (empty without groups).
    switches = [r.view() for r in switcher.history.latest()] if switcher else []
    return {
        "object": "list",
        "data": await engines_report(state.engines),
        "switches": switches,
    }
