"""A closed-loop load generator: a fixed number of workers, each sending its next request
as soon as the previous one is answered.

    python -m benchmarks.loadgen http://127.0.0.1:8080 -c 32 -d 5
    python -m benchmarks.loadgen http://127.0.0.1:8080 -c 1 -n 2000 --stream

A warm-up (connections opened, caches filled) runs first and is not counted. In duration
mode every request that completes inside the measured window counts towards throughput
and latency; in count mode the window ends at the n-th completion. For streams the time
to the first content chunk and the gaps between content chunks are recorded as well.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

MODEL = "bench-model"
_MAX_ERROR_SAMPLES = 5


def chat_body(stream: bool = False, chunks: int = 20, include_usage: bool = False) -> bytes:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": chunks,
    }
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


@dataclass(slots=True)
class LoadSpec:
    url: str  # the full endpoint URL
    body: bytes
    concurrency: int = 1
    duration_s: float | None = 5.0  # ignored when `requests` is set
    requests: int | None = None
    warmup_s: float = 1.0
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list; NaN when it is empty."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass(slots=True)
class LoadResult:
    concurrency: int
    elapsed_s: float = 0.0
    errors: int = 0
    # Every request answered, warm-up and tail included: the divisor for CPU per request.
    answered: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, one per good request
    ttft: list[float] = field(default_factory=list)  # seconds to the first content chunk
    gaps: list[float] = field(default_factory=list)  # seconds between content chunks
    error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Milliseconds and requests per second, ready for a table or JSON."""
        out: dict[str, Any] = {
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests": self.ok,
            "errors": self.errors,
            "rps": round(self.rps, 1),
        }
        for name, values in (("latency", self.latencies), ("ttft", self.ttft), ("gap", self.gaps)):
            if not values:
                continue
            ordered = sorted(values)
            for q in (0.5, 0.9, 0.99):
                out[f"{name}_p{round(q * 100)}_ms"] = round(percentile(ordered, q) * 1000, 3)
            out[f"{name}_mean_ms"] = round(sum(ordered) / len(ordered) * 1000, 3)
        if self.error_samples:
            out["error_samples"] = self.error_samples
        return out


class _Window:
    """Shared clock for all workers: when counting starts and when everybody stops."""

    def __init__(self, spec: LoadSpec) -> None:
        now = time.perf_counter()
        self.spec = spec
        self.start = now + spec.warmup_s
        self.end = (
            self.start + spec.duration_s
            if spec.requests is None and spec.duration_s is not None
            else float("inf")
        )
        self.stopped = False
        self.last_done = self.start

    def counts(self, done: float) -> bool:
        return self.start <= done <= self.end

    def after(self, result: LoadResult, done: float) -> None:
        if done > self.end:
            self.stopped = True
        elif self.spec.requests is not None and result.ok + result.errors >= self.spec.requests:
            self.stopped = True
            self.last_done = done


async def _one(
    session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult, window: _Window
) -> None:
    started = time.perf_counter()
    first: float | None = None
    gaps: list[float] = []
    try:
        async with session.post(spec.url, data=spec.body, headers=spec.headers) as response:
            if response.status != 200:
                error = f"HTTP {response.status}: {(await response.read())[:200]!r}"
            elif not spec.stream:
                await response.read()
                error = None
            else:
                error = "stream ended without [DONE]"
                last = 0.0
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    if line.startswith(b"data: [DONE]"):
                        error = None
                        continue
                    if b'"delta"' not in line:  # the usage chunk: not a token
                        continue
                    now = time.perf_counter()
                    if first is None:
                        first = now - started
                    else:
                        gaps.append(now - last)
                    last = now
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    done = time.perf_counter()
    result.answered += 1
    if window.counts(done):
        if error is None:
            result.latencies.append(done - started)
            if first is not None:
                result.ttft.append(first)
            result.gaps.extend(gaps)
        else:
            result.errors += 1
            if len(result.error_samples) < _MAX_ERROR_SAMPLES:
                result.error_samples.append(error)
    window.after(result, done)


async def run_load(spec: LoadSpec) -> LoadResult:
    """Run one closed-loop phase against `spec.url` and return what was measured."""
    result = LoadResult(concurrency=spec.concurrency)
    connector = aiohttp.TCPConnector(limit=spec.concurrency, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"content-type": "application/json", **spec.headers}
    spec = dataclasses.replace(spec, headers=headers)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
    ) as session:
        window = _Window(spec)

        async def worker() -> None:
            while not window.stopped:
                await _one(session, spec, result, window)

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    if spec.requests is None and spec.duration_s is not None:
        result.elapsed_s = spec.duration_s
    else:
        result.elapsed_s = window.last_done - window.start
    return result


def main(argv: list[str] | None = None) -> None:
    from benchmarks.fake_upstream import install_uvloop

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("-n", "--requests", type=int, help="count instead of duration")
    parser.add_argument("-w", "--warmup", type=float, default=1.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--api-key", help="sent as Authorization: Bearer")
    args = parser.parse_args(argv)
    install_uvloop()
    headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    spec = LoadSpec(
        url=args.base_url.rstrip("/") + args.path,
        body=chat_body(args.stream, args.chunks),
        concurrency=args.concurrency,
        duration_s=args.duration,
        requests=args.requests,
        warmup_s=args.warmup,
        stream=args.stream,
        headers=headers,
    )
    result = asyncio.run(run_load(spec))
    print(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
