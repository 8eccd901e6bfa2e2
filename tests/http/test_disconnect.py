"""`until_disconnect`: a request's work stops when its client goes away (so vLLM stops
generating for nobody), and only then: a server's own cancellation still propagates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.http.disconnect import until_disconnect
from tests.http.exchange import Exchange, body_messages


async def test_work_that_ends_first_is_not_a_disconnect() -> None:
    done: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.01)
        done.append("answered")

    tasks_before = asyncio.all_tasks()
    assert await until_disconnect(work(), Exchange().receive) is False
    assert done == ["answered"]
    await asyncio.sleep(0)  # the watcher's cancellation is delivered
    assert asyncio.all_tasks() == tasks_before  # no watcher left behind


async def test_a_disconnect_cancels_the_work_and_the_request_carries_on() -> None:
    exchange = Exchange()
    reached: list[str] = []

    async def generate() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            reached.append("cancelled")  # where the upstream stream would be closed
            raise

    asyncio.get_running_loop().call_later(0.05, exchange.disconnect)
    assert await until_disconnect(generate(), exchange.receive) is True
    assert reached == ["cancelled"]
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # fully uncancelled
    await asyncio.sleep(0)  # so the request can still record its usage afterwards


async def test_more_body_messages_are_not_a_disconnect() -> None:
    exchange = Exchange(body_messages(b"late", b"chunks"))

    async def work() -> None:
        await asyncio.sleep(0.05)

    assert await until_disconnect(work(), exchange.receive) is False


async def test_the_servers_own_cancellation_is_not_swallowed() -> None:
    exchange = Exchange()

    async def request() -> bool:
        return await until_disconnect(asyncio.sleep(30), exchange.receive)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.02)
    task.cancel()  # shutdown, not the client
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_error_in_the_work_propagates() -> None:
    async def failing() -> None:
        raise ValueError("bad upstream answer")

    with pytest.raises(ValueError, match="bad upstream answer"):
        await until_disconnect(failing(), Exchange().receive)


async def test_a_disconnect_before_the_watcher_starts_is_still_noticed() -> None:
    exchange = Exchange()
    exchange.disconnect()  # gone before the work even began

    started = asyncio.get_running_loop().time()
    assert await until_disconnect(asyncio.sleep(30), exchange.receive) is True
    # Noticed once the watcher starts, not when the work would have ended.
    assert asyncio.get_running_loop().time() - started < 1


async def test_work_shorter_than_the_watch_delay_starts_no_task() -> None:
    loop = asyncio.get_running_loop()
    created: list[object] = []
    default = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        if default is not None:
            return default(loop, coro, **kwargs)  # type: ignore[return-value]
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        assert await until_disconnect(asyncio.sleep(0.001), Exchange().receive) is False
        assert created == []
        # A longer one gets its watcher.
        assert (
            await until_disconnect(asyncio.sleep(0.05), Exchange().receive, watch_after_s=0.01)
            is False
        )
        assert len(created) == 1
    finally:
        loop.set_task_factory(default)
