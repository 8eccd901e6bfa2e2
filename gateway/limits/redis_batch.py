"""Group commit for the limiter's Lua scripts.

Under load, many requests admit and settle in the same event-loop turn. Sending each
EVALSHA on its own costs a round trip and redis-py's per-command overhead every time;
here the calls queued during one turn go out as one pipeline (not a transaction: each
script is atomic by itself), and every caller still awaits its own reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

_Call = tuple[AsyncScript, Sequence[str], Sequence[Any], "asyncio.Future[Any]"]
_Script = tuple[AsyncScript, Sequence[str], Sequence[Any]]


class ScriptBatcher:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queue: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()  # held, or the loop may drop them

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._enqueue(script, keys, args)

    async def call_many(self, calls: Sequence[_Script]) -> list[Any]:
        """Several calls in one pipeline, without a task each; raises the first failure."""
        futures = [self._enqueue(*call) for call in calls]
        return [await future for future in futures]

    def _enqueue(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, keys, args, future))
        if len(self._queue) == 1:
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return future

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        try:
            results = await self._execute(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                # Redis restarted and lost its script cache: load them again, retry those.
                for script in {batch[i][0] for i in missing}:
                    script.sha = await self._client.script_load(script.script)
                retried = await self._execute([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller gave up (cancelled) meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)
