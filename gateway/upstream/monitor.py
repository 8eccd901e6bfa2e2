"""Background discovery and health checks of the engines.

Every `health_interval_s`, each engine's `/health` is probed; a healthy engine whose model
list is missing or older than `discovery_interval_s` is asked for `/v1/models` again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from gateway.background import BackgroundTask
from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.upstream.client import upstream_headers
from gateway.upstream.registry import Registry, Upstream

log = logging.getLogger("gateway.upstream")

_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)


class Monitor:
    def __init__(
        self,
        registry: Registry,
        session: aiohttp.ClientSession,
        settings: Settings,
        metrics: Metrics,
        asleep: Callable[[Upstream], bool] | None = None,
    ) -> None:
        self.registry = registry
        # Engines asleep in their group are not probed: a stopped one is not a sick one.
        self.asleep = asleep
        self.session = session
        self.settings = settings
        self.metrics = metrics
        self._discovered_at: dict[str, float] = {}
        # Called after each discovery (LoRA adapters an engine came back without).
        self.after_discovery: Callable[[Upstream], Awaitable[None]] | None = None
        self._task = BackgroundTask("upstream-monitor")

    async def check_all(self) -> None:
        asleep = self.asleep
        await asyncio.gather(
            *(self.check(u) for u in self.registry.upstreams if asleep is None or not asleep(u))
        )

    async def check(self, upstream: Upstream) -> None:
        try:
            async with self.session.get(upstream.url + "/health", timeout=_PROBE_TIMEOUT) as r:
                ok = r.status == 200
                reason = f"/health answered {r.status}"
            if ok and self._discovery_due(upstream):
                await self._discover(upstream)
                if self.after_discovery is not None:
                    await self.after_discovery(upstream)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        self.set_health(upstream, ok, None if ok else reason)

    def set_health(self, upstream: Upstream, healthy: bool, reason: str | None = None) -> None:
        if upstream.healthy != healthy:
            if healthy:
                log.info("upstream healthy", extra={"upstream": upstream.url})
            else:
                log.warning(
                    "upstream unhealthy", extra={"upstream": upstream.url, "reason": reason}
                )
        upstream.healthy = healthy
        upstream.last_error = reason
        self.metrics.upstream_healthy.labels(upstream.url).set(1 if healthy else 0)

    def _discovery_due(self, upstream: Upstream) -> bool:
        last = self._discovered_at.get(upstream.url)
        return last is None or time.monotonic() - last >= self.settings.discovery_interval_s

    async def _discover(self, upstream: Upstream) -> None:
        headers = upstream_headers(self.settings, "discovery")
        async with self.session.get(
            upstream.url + "/v1/models", headers=headers, timeout=_PROBE_TIMEOUT
        ) as r:
            if r.status != 200:
                raise ValueError(f"/v1/models answered {r.status}")
            payload = orjson.loads(await r.read())
        cards = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(cards, list):
            raise ValueError("/v1/models returned no `data` list")
        before = set(upstream.models)
        self.registry.set_models(upstream, [c for c in cards if isinstance(c, dict)])
        self._discovered_at[upstream.url] = time.monotonic()
        if set(upstream.models) != before:
            log.info(
                "models discovered",
                extra={"upstream": upstream.url, "models": sorted(upstream.models)},
            )

    async def rediscover(self, upstream: Upstream) -> None:
        """Ask for the engine's models now (its list just changed); a failure leaves the
        old list for the next regular discovery to replace."""
        try:
            await self._discover(upstream)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "rediscovery failed", extra={"upstream": upstream.url, "error": type(exc).__name__}
            )

    def start(self) -> None:
        self._task.start(self._run)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                await self.check_all()
            except Exception:  # the loop must outlive any one bad answer
                log.exception("upstream monitor iteration failed")

    async def stop(self) -> None:
        await self._task.stop()
