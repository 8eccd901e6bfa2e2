"""LISTEN on a dedicated psycopg connection, reconnecting with backoff.

A pooled connection cannot LISTEN (the pool hands it to someone else), hence a connection
of its own. `on_connect` runs after every successful LISTEN, the first included: anything
announced while we were not listening is lost, so the caller must assume everything
changed. A heartbeat query notices a connection that died without a word (a NAT or a
firewall dropping it), which a socket waiting for notifications never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import psycopg
from psycopg import sql

from gateway.background import BackgroundTask

log = logging.getLogger("gateway.keys")


class Listener:
    def __init__(
        self,
        url: str,
        channel: str,
        on_message: Callable[[str], None],
        on_connect: Callable[[], None],
        *,
        heartbeat_s: float = 15.0,
        connect_timeout_s: int = 5,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._url = url
        self._channel = channel
        self._on_message = on_message
        self._on_connect = on_connect
        self._heartbeat_s = heartbeat_s
        self._connect_timeout_s = connect_timeout_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._task = BackgroundTask(f"listen-{channel}")
        self._attempted = asyncio.Event()
        self.connected = False
        self.connections = 0  # successful LISTENs so far; tests and metrics read it

    async def start(self, wait_s: float = 5.0) -> None:
        """Start listening; wait (at most `wait_s`) for the first attempt, not for success:
        the gateway must come up during a database outage too."""
        self._task.start(self._run)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._attempted.wait()

    async def stop(self) -> None:
        await self._task.stop()
        self.connected = False

    async def _run(self) -> None:
        backoff = self._min_backoff_s
        while True:
            before = self.connections
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                # psycopg's messages name the host or socket, never the password.
                log.warning(
                    "key invalidation listener disconnected; retrying in about %.1fs: %s: %s",
                    backoff,
                    type(exc).__name__,
                    str(exc).strip(),
                )
            except Exception:
                # A listener that stops for good lets revoked keys live until their TTL.
                log.exception("key invalidation listener failed; restarting it")
            finally:
                self.connected = False
                self._attempted.set()
            if self.connections != before:
                backoff = self._min_backoff_s  # it worked a while: retry at once
            # Jitter keeps a fleet of replicas from reconnecting in lockstep after a restart.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=self._connect_timeout_s
        )
        async with conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.connected = True
            self.connections += 1
            self._on_connect()
            self._attempted.set()
            while True:
                async for note in conn.notifies(timeout=self._heartbeat_s):
                    self._on_message(note.payload)
                async with asyncio.timeout(self._heartbeat_s):
                    await conn.execute("SELECT 1")
