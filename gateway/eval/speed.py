"""Speed through the gateway: time to first token and decode tokens/s, one stream at a
time and N at once. Every prompt starts with different words, so vLLM's prefix cache
cannot serve one request's prompt from another's and flatter the first-token time."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.eval.client import Timing

_TOPICS = (
    "lighthouse", "glacier", "orchard", "submarine", "volcano", "library", "desert", "harbour",
    "observatory", "vineyard", "monastery", "canyon", "railway", "bakery", "reef", "market",
)  # fmt: skip


@dataclass(frozen=True)
class SpeedResult:
    concurrency: int
    requests: int
    ttft_ms: float  # median
    tokens_per_s: float  # median decode rate of one stream
    total_tokens_per_s: float  # all streams' tokens over the wall time


def prompts(count: int, seed: int) -> list[str]:
    """`count` different prompts; a distinct opening makes every prefix different."""
    rng = random.Random(seed)
    found = []
    for i in range(count):
        a, b = rng.sample(_TOPICS, 2)
        found.append(
            f"{rng.randrange(10**6)} {a} {i}: write a long, detailed story about a {a} "
            f"near a {b}. Keep writing."
        )
    return found


def request(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    # ignore_eos (vLLM): every stream decodes max_tokens, so rates compare across models.
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
        "ignore_eos": True,
    }


def summarize(concurrency: int, timings: list[Timing], wall_s: float) -> SpeedResult:
    rates = [(t.tokens - 1) / t.decode_s for t in timings if t.tokens > 1 and t.decode_s > 0]
    total = sum(t.tokens for t in timings)
    return SpeedResult(
        concurrency,
        len(timings),
        statistics.median(t.ttft_s for t in timings) * 1000 if timings else 0.0,
        statistics.median(rates) if rates else 0.0,
        total / wall_s if wall_s > 0 else 0.0,
    )


class Streamer(Protocol):
    """The part of EvalClient that speed uses."""

    async def stream(self, body: dict[str, Any]) -> Timing: ...


async def measure(
    client: Streamer, model: str, concurrency: int, requests: int, max_tokens: int, seed: int
) -> SpeedResult:
    """`requests` streams, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> Timing:
        async with gate:
            return await client.stream(request(model, prompt, max_tokens))

    start = time.perf_counter()
    timings = await asyncio.gather(*(one(p) for p in prompts(requests, seed)))
    return summarize(concurrency, list(timings), time.perf_counter() - start)
