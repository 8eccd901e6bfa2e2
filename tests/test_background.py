"""A component's background task starts once and leaves nothing behind when stopped."""

from __future__ import annotations

import asyncio

from gateway.background import BackgroundTask


async def test_started_once_and_cancelled_on_stop() -> None:
    runs = 0
    cancelled = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        runs += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = BackgroundTask("refresh")
    task.start(loop)
    task.start(loop)  # a second start is a no-op, not a second loop
    await asyncio.sleep(0)
    assert runs == 1
    assert [t.get_name() for t in asyncio.all_tasks()].count("refresh") == 1
    await task.stop()
    assert cancelled.is_set()
    assert "refresh" not in [t.get_name() for t in asyncio.all_tasks()]
    await task.stop()  # stopping twice is harmless
    task.start(loop)  # and it can start again
    await asyncio.sleep(0)
    assert runs == 2
    await task.stop()
