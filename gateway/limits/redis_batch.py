"""Group commit for the limiter's Lua scripts.

Under load, many requests admit and settle in the same event-loop turn. Sending each
EVALSHA on its own costs a round trip and redis-py's per-command overhead every time;
here the calls queued meanwhile go out as one pipeline (not a transaction: each script
is atomic by itself), and every caller still awaits its own reply.

One pipeline is in flight at a time (group commit): what is queued while it is out goes
in the next one. So a busy gateway sends fewer, fuller pipelines and holds one Redis
connection, and calls wait here in a list rather than in the connection pool: when
Redis dies, `fail_queued` sends them on their way (to memory) at once instead of each
paying its own timeout.

A call that can wait (`call(..., within_s=...)`: a settle, whose caller already has its
answer) waits that long for company before it goes alone: one request at a time then
costs one round trip (its admission carries the previous request's settle), not two.

With one pipeline in flight, one connection is all the batcher needs: it keeps one of
the client's pool and writes each batch on it with redis-py's own packing and reply
parser. redis-py's Pipeline object and the blocking pool's checkout cost ~80 us of CPU
per round trip (half of it) on the request path (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

_Call = tuple[AsyncScript, Sequence[str], Sequence[Any], "asyncio.Future[Any]"]
_Script = tuple[AsyncScript, Sequence[str], Sequence[Any]]


class ScriptBatcher:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None  # held, or the loop may drop it
        self._timer: asyncio.TimerHandle | None = None  # a call that could wait is queued
        self._conn: AbstractConnection | None = None  # taken from the pool at first use

    async def call(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        within_s: float = 0.0,
    ) -> Any:
        """The script's reply; `within_s`: how long the call may wait for others to go
        with it (0: in the next pipeline)."""
        return await self._enqueue(script, keys, args, within_s)

    async def drain(self) -> None:
        """Send what is queued now and wait until it is answered, then give the
        connection back (before closing)."""
        self._start_sending()
        while self._sender is not None:
            await asyncio.shield(self._sender)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._client.connection_pool.release(conn)

    async def call_many(self, calls: Sequence[_Script]) -> list[Any]:
        """Several calls in one pipeline, without a task each; raises the first failure."""
        futures = [self._enqueue(*call) for call in calls]
        return [await future for future in futures]

    def _enqueue(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any], within_s: float = 0.0
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, keys, args, future))
        if self._sender is not None:
            pass  # goes with the next pipeline
        elif within_s <= 0:
            self._start_sending()
        elif self._timer is None:
            self._timer = loop.call_later(within_s, self._start_sending)
        return future

    def _start_sending(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sender is None and self._queue:
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())

    def fail_queued(self, exc: BaseException) -> None:
        """Fail the calls not sent yet (the one pipeline in flight answers for itself)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queued, self._queue = self._queue, []
        for *_, future in queued:
            if not future.done():
                future.set_exception(exc)

    async def _send_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._flush(batch)
        finally:
            self._sender = None
            # Cancelled (the limiter closing): nobody is left to send what is queued.
            queued, self._queue = self._queue, []
            for *_, future in queued:
                future.cancel()

    async def _flush(self, batch: list[_Call]) -> None:
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
        """Each call's reply, or the error Redis answered it with."""
        if self._conn is None:
            self._conn = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        conn = self._conn
        commands = [
            ("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args, _ in batch
        ]

        async def round_trip() -> list[Any]:
            await conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:  # read whole: the next reply follows it
                    replies.append(exc)
            return replies

        # The pool's retry policy, as redis-py's own commands apply it: a dropped
        # connection (Redis restarted) is reconnected and the batch sent once more.
        return await conn.retry.call_with_retry(round_trip, lambda _: conn.disconnect())
