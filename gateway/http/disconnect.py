"""Running a request's work until the client goes away.

A watcher task waits for `http.disconnect` and cancels the request's own task, the way
`asyncio.timeout` does: the work runs inline (no second task), and the cancellation is
told apart from the server's own by `uncancel()`.

The watcher starts only once the work has lasted `WATCH_AFTER_S`: most requests a
gateway relays (embeddings, tokenize, short answers) are over sooner, and for them a
task created, scheduled and cancelled was a tenth of the gateway's own CPU per request.
A timer costs a fraction of that. A client that leaves is then noticed at most that much
later, which is nothing next to the generation it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from gateway.http.asgi import Receive

WATCH_AFTER_S = 0.02


async def until_disconnect(
    work: Awaitable[None], receive: Receive, *, watch_after_s: float = WATCH_AFTER_S
) -> bool:
    """Await `work`; if the client disconnects first, cancel it and return True."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(watch_after_s, start_watching)
    try:
        await work
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            return True
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
    return False
