"""Running a request's work until the client goes away.

One watcher task per request waits for `http.disconnect` and cancels the request's own
task, the way `asyncio.timeout` does: the work runs inline (no second task), and the
cancellation is told apart from the server's own by `uncancel()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from gateway.http.asgi import Receive


async def until_disconnect(work: Awaitable[None], receive: Receive) -> bool:
    """Await `work`; if the client disconnects first, cancel it and return True."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await work
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            return True
        raise
    finally:
        watcher.cancel()
    return False
