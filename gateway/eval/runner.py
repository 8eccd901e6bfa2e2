"""Run cases against one model through the gateway, `concurrency` at a time, each attempt
reported as it finishes (so an interrupted run keeps what it finished)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gateway.eval.cases import Case
from gateway.eval.checks import Answer, failures
from gateway.eval.client import EvalApiError, EvalClient
from gateway.eval.scoring import Attempt

OUTPUT_CHARS = 2000  # raw output kept per attempt: enough to see what went wrong
# The key or the model is wrong: no later case can do better, stop the run.
_FATAL = frozenset({401, 403})
# vLLM's words when a request needs a server flag it was not started with.
_ENGINE_FLAGS = ("--tool-call-parser", "--enable-auto-tool-choice")
_RATE_LIMIT_RETRIES = 6
_MAX_WAIT_S = 30.0


def refused_by_configuration(exc: EvalApiError) -> bool:
    return exc.status == 400 and any(flag in exc.message for flag in _ENGINE_FLAGS)


class RunAborted(Exception):
    """A refusal that every case would meet (bad key, model not served)."""


async def _chat(client: EvalClient, body: dict[str, Any]) -> Answer:
    """One answer; a key's rate limit (429) is waited out as the SDKs do, not scored."""
    for attempt in range(_RATE_LIMIT_RETRIES + 1):
        try:
            return await client.chat(body)
        except EvalApiError as exc:
            if exc.status != 429 or attempt == _RATE_LIMIT_RETRIES:
                raise
            await asyncio.sleep(min(exc.retry_after_s or 2.0**attempt, _MAX_WAIT_S))
    raise AssertionError("unreachable")


async def run_case(client: EvalClient, model: str, case: Case) -> Attempt:
    start = time.perf_counter()
    try:
        answer = await _chat(client, case.request(model))
    except EvalApiError as exc:
        if exc.status in _FATAL:
            raise RunAborted(str(exc)) from None
        return Attempt(
            case.id,
            case.category,
            False,
            [f"error: {exc}"],
            error=str(exc),
            seconds=time.perf_counter() - start,
            refused=refused_by_configuration(exc),
        )
    failed = failures(case.checks, answer)
    return Attempt(
        case.id,
        case.category,
        not failed,
        failed,
        answer.text[:OUTPUT_CHARS],
        [(name, args[:OUTPUT_CHARS]) for name, args in answer.tool_calls],
        seconds=time.perf_counter() - start,
    )


async def run_cases(
    client: EvalClient,
    model: str,
    cases: list[Case],
    *,
    repeat: int,
    concurrency: int,
    on_attempt: Callable[[Attempt], None],
) -> None:
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for _ in range(repeat):
        for case in cases:
            queue.put_nowait(case)

    async def worker() -> None:
        while not queue.empty():
            case = queue.get_nowait()
            on_attempt(await run_case(client, model, case))

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def check_served(client: EvalClient, models: list[str]) -> None:
    """Fail fast, in plain words, on a bad key or a model the gateway does not serve."""
    try:
        served = await client.models()
    except EvalApiError as exc:
        raise RunAborted(str(exc)) from None
    missing = [m for m in models if m not in served]
    if missing:
        raise RunAborted(
            f"not served by this gateway: {', '.join(missing)} "
            f"(served: {', '.join(served) or 'none'})"
        )
