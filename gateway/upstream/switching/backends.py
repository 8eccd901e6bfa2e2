"""How an engine of a group is put to sleep and woken: one interface, two backends.

    SleepApi        vLLM's sleep mode (CUDA): POST /sleep?level=N, POST /wake_up,
                    GET /is_sleeping; the engine runs with --enable-sleep-mode and
                    VLLM_SERVER_DEV_MODE=1 (without it those routes answer 404).
    ProcessControl  the engine as a process the gateway starts and stops (CPU engines,
                    where sleep mode does not exist): sleeping is not running.

Failures raise UpstreamUnavailable with a message for the operator's log; a failed wake
leaves the engine asleep (or stopped) as far as the backend can make it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from gateway.config import Settings
from gateway.errors import UpstreamUnavailable
from gateway.local.process import ChildProcess
from gateway.upstream.switching.config import GroupEngine

_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Let a stopping engine finish its own shutdown (vLLM frees its memory) before SIGKILL.
_STOP_GRACE_S = 20.0


class Control(Protocol):
    async def is_awake(self) -> bool: ...

    async def sleep(self) -> None: ...

    async def wake(self) -> None: ...

    def exited(self) -> bool:
        """True once an engine this backend started has died on its own."""
        ...

    async def close(self) -> None: ...


class SleepApi:
    def __init__(
        self, session: aiohttp.ClientSession, engine: GroupEngine, headers: dict[str, str]
    ) -> None:
        self.session = session
        self.url = engine.url
        self.level = engine.sleep_level
        self.headers = headers

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        data = None if json is None else orjson.dumps(json)
        headers = (
            self.headers if data is None else {**self.headers, "content-type": "application/json"}
        )
        try:
            async with self.session.request(
                method, self.url + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(f"{self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if status == 404:
            raise UpstreamUnavailable(
                f"{self.url}{path} answered 404: start the engine with --enable-sleep-mode "
                "and VLLM_SERVER_DEV_MODE=1 (sleep mode needs CUDA)"
            )
        if status != 200:
            raise UpstreamUnavailable(f"{self.url}{path} answered {status}: {raw[:200]!r}")
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return None

    async def is_awake(self) -> bool:
        payload = await self._call("GET", "/is_sleeping")
        if not isinstance(payload, dict) or not isinstance(payload.get("is_sleeping"), bool):
            raise UpstreamUnavailable(f"{self.url}/is_sleeping did not say whether it sleeps")
        return not payload["is_sleeping"]

    async def sleep(self) -> None:
        # mode=wait: should anything still run there, vLLM finishes it rather than abort it.
        await self._call("POST", f"/sleep?level={self.level}&mode=wait")
        if await self.is_awake():
            raise UpstreamUnavailable(f"{self.url} still awake after /sleep")

    async def wake(self) -> None:
        try:
            if self.level == 2:
                # Level 2 dropped the weights: load them again before the KV cache comes back
                # (vLLM's own order: weights, reload_weights, kv_cache).
                await self._call("POST", "/wake_up?tags=weights")
                await self._call("POST", "/collective_rpc", {"method": "reload_weights"})
                await self._call("POST", "/wake_up?tags=kv_cache")
            else:
                await self._call("POST", "/wake_up")
            if not await self.is_awake():
                raise UpstreamUnavailable(f"{self.url} still asleep after /wake_up")
        except BaseException:
            # Half awake holds memory the next engine needs: back to sleep, if it listens.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._call("POST", f"/sleep?level={self.level}"))
            raise

    def exited(self) -> bool:
        return False  # the engine runs on its own; its health checks tell

    async def close(self) -> None:
        return None


class ProcessControl:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        engine: GroupEngine,
        headers: dict[str, str],
        start_timeout_s: float,
        api_key: str | None = None,
    ) -> None:
        self.session = session
        self.engine = engine
        # An engine the gateway starts requires the key the gateway sends it (vLLM reads
        # VLLM_API_KEY), so no secret has to be written into the group's configuration.
        self.env = {**engine.env, **({"VLLM_API_KEY": api_key} if api_key else {})}
        self.headers = headers
        self.start_timeout_s = start_timeout_s
        port = urlsplit(engine.url).port or 80
        default = Path(tempfile.gettempdir()) / f"gateway-engine-{port}.log"
        self.log_path = Path(engine.log_file) if engine.log_file else default
        self._child: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def is_awake(self) -> bool:
        return self._child is not None and self._child.running

    async def wake(self) -> None:
        if self._child is not None and self._child.running:
            return
        # Started from the event loop's thread: the child dies with that thread (Linux).
        child = ChildProcess(
            self.engine.command, env={**_engine_environ(), **self.env}, log_path=self.log_path
        )
        child.start()
        self._child = child
        deadline = time.monotonic() + self.start_timeout_s
        try:
            while not await self._healthy():
                if not child.running:
                    raise UpstreamUnavailable(
                        f"engine {self.engine.url} exited with code {child.returncode} while "
                        f"starting; see {self.log_path}"
                    )
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(
                        f"engine {self.engine.url} did not become healthy within "
                        f"{self.start_timeout_s:.0f} s; see {self.log_path}"
                    )
                await asyncio.sleep(0.25)
        except BaseException:
            await asyncio.shield(self._stop())
            raise

    async def _healthy(self) -> bool:
        try:
            async with self.session.get(
                self.engine.url + "/health", headers=self.headers, timeout=_PROBE_TIMEOUT
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def sleep(self) -> None:
        await self._stop()

    async def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            await asyncio.to_thread(child.stop, _STOP_GRACE_S)

    def exited(self) -> bool:
        return self._child is not None and not self._child.running

    async def close(self) -> None:
        await self._stop()


def _engine_environ() -> dict[str, str]:
    """The gateway's environment without its own settings: the admin key, the database URL
    and the like are none of an engine's business."""
    own = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields} | {"GATEWAY_CONFIG"}
    return {k: v for k, v in os.environ.items() if k not in own}
