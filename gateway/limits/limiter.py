"""The limiter the request path calls: `admit` before proxying, `settle` when the response ends.

Limits live in Redis when `GATEWAY_REDIS_URL` is set (shared by all replicas), else in this
process. If Redis stops answering (refused, or timeouts in a row), admissions fall back
to memory (each replica then enforces the full limits on its own), a warning is logged
once, and a background probe switches back as soon as Redis answers again: a Redis
outage never fails a request.

In-flight slots are leases, kept short so that one a replica cannot release (it died,
or Redis blinked at that moment) frees itself soon. One task per process renews the
leases of the requests still running, every third of a lease: one pipelined round trip
(one script per key) for those in Redis, a dictionary pass for those in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import Settings
from gateway.keys.record import KeyRecord
from gateway.limits.admission import Admission, Quota
from gateway.limits.bucket import Limits, never_fits, remaining, reset_s
from gateway.limits.memory import MemoryBackend
from gateway.limits.redis_backend import RedisBackend
from gateway.limits.refusals import refused, too_large
from gateway.metrics import Metrics

log = logging.getLogger("gateway.limits")

_UNLIMITED = Limits()
# Anything Redis (or the socket under it) can raise means "not usable now": refused, reset,
# timed out, loading, read-only after a failover. A persistent non-network error (say, a
# script bug) also lands here; the probe then flaps back with one warning per attempt.
_REDIS_FAILURES = (RedisError, OSError)
# A lone timeout may be this process's own event loop stalling under a burst rather than
# Redis: only a run of them (or any other failure) switches to memory. Until then each
# timed-out request is admitted on memory alone.
_TIMEOUTS_TO_FALL_BACK = 3


class Limiter:
    def __init__(
        self,
        metrics: Metrics,
        *,
        lease_s: float,
        redis: RedisBackend | None = None,
        memory: MemoryBackend | None = None,
        probe_interval_s: float = 3.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._metrics = metrics
        self._lease_s = lease_s
        self._redis = redis
        self._memory = memory if memory is not None else MemoryBackend()  # empty is falsy
        self._probe_interval_s = probe_interval_s
        # Tests pass one clock for both backends; in service Redis uses its own clock
        # (one for all replicas) and memory uses time.monotonic.
        self._clock = clock
        self._degraded = False
        self._timeouts = 0
        self._probe_task: asyncio.Task[None] | None = None
        # Admissions holding a slot, by request id: what the renewal task keeps alive.
        self._leases: dict[str, Admission] = {}
        self._renew_task: asyncio.Task[None] | None = None
        self._set_gauge()

    @classmethod
    async def create(
        cls,
        settings: Settings,
        metrics: Metrics,
        *,
        prefix: str = "gw:rl:",
        probe_interval_s: float = 3.0,
    ) -> Limiter:
        redis = None
        if settings.redis_url:
            redis = RedisBackend.from_url(settings.redis_url, prefix=prefix)
        limiter = cls(
            metrics,
            lease_s=settings.slot_lease_s,
            redis=redis,
            memory=MemoryBackend(max_states=settings.limiter_max_states),
            probe_interval_s=probe_interval_s,
        )
        if redis is not None:
            try:
                await redis.ping()
            except _REDIS_FAILURES as exc:
                # Starting without Redis is allowed: memory now, Redis once it answers.
                limiter._fall_back(exc)
        return limiter

    @property
    def memory_states(self) -> int:
        """Limit states held in this process (what a flood of new end users could grow)."""
        return len(self._memory)

    @property
    def backend_name(self) -> str:
        return "redis" if self._redis is not None and not self._degraded else "memory"

    async def admit(self, key: KeyRecord, request_id: str, estimated_tokens: int) -> Admission:
        """Reserve one request, `estimated_tokens` and a slot, or raise `RateLimited`."""
        if key.rpm is None and key.tpm is None and key.max_parallel is None:
            return Admission(key.id, request_id, _UNLIMITED, estimated_tokens, None)
        limits = Limits(key.rpm, key.tpm, key.max_parallel)
        cost = max(0, estimated_tokens)
        impossible = never_fits(limits, cost)
        if impossible is not None:
            self._metrics.rate_limited.labels("too_large").inc()
            raise too_large(impossible, limits, cost)
        now = self._clock() if self._clock is not None else None
        backend = "memory"
        decision = None
        if self._redis is not None and not self._degraded:
            try:
                decision = await self._redis.admit(
                    key.id, limits, request_id, cost, self._lease_s, now
                )
                backend = "redis"
                self._timeouts = 0
            except _REDIS_FAILURES as exc:
                self._redis_failed("admit", exc)
        if decision is None:
            decision = self._memory.admit(key.id, limits, request_id, cost, self._lease_s, now)
        requests = (
            Quota(limits.rpm, remaining(decision.requests), reset_s(decision.requests, limits.rpm))
            if limits.rpm is not None
            else None
        )
        tokens = (
            Quota(limits.tpm, remaining(decision.tokens), reset_s(decision.tokens, limits.tpm))
            if limits.tpm is not None
            else None
        )
        if not decision.admitted:
            self._metrics.rate_limited.labels(decision.refused or "requests").inc()
            raise refused(decision, limits, cost, requests, tokens)
        admission = Admission(key.id, request_id, limits, cost, backend, requests, tokens)
        if limits.max_parallel is not None:
            self._leases[request_id] = admission
            if self._renew_task is None:
                self._renew_task = asyncio.get_running_loop().create_task(
                    self._renew_leases(), name="slot-lease-renewal"
                )
        return admission

    async def settle(
        self, admission: Admission, actual_tokens: int | None, *, answered: bool = False
    ) -> None:
        """Release the slot and correct the token reservation to `actual_tokens`.

        `None` (usage unknown, e.g. the client left) keeps the estimate. Idempotent, and
        never raises for Redis: a lost settle costs at most a lease that expires by itself.
        `answered`: the client has its answer; in Redis the release may then wait a few
        milliseconds to share the next admission's round trip.
        """
        if admission.settled:
            return
        admission.settled = True
        # No longer renewed from here on: if the release below is lost, the lease ends.
        self._leases.pop(admission.request_id, None)
        limits = admission.limits
        delta = 0
        if actual_tokens is not None and limits.tpm is not None:
            delta = actual_tokens - admission.estimated_tokens
        lease = limits.max_parallel is not None
        if admission.backend is None or (not lease and delta == 0):
            return  # nothing stored would change: skip the round trip
        now = self._clock() if self._clock is not None else None
        if admission.backend == "memory":
            self._memory.settle(admission.key_id, limits, admission.request_id, delta, now)
            return
        if self._redis is None or self._degraded:
            return  # reserved in a Redis that is gone now: its lease expires there
        try:
            await self._redis.settle(
                admission.key_id,
                limits,
                admission.request_id if lease else None,
                delta,
                now,
                answered=answered,
            )
        except _REDIS_FAILURES as exc:
            self._redis_failed("settle", exc)

    async def renew(self) -> None:
        """Extend the lease of every slot this process still holds."""
        if not self._leases:
            return
        now = self._clock() if self._clock is not None else None
        memory: dict[str, list[str]] = {}
        redis: dict[str, list[str]] = {}
        for request_id, admission in self._leases.items():
            held = redis if admission.backend == "redis" else memory
            held.setdefault(admission.key_id, []).append(request_id)
        for key_id, request_ids in memory.items():
            self._memory.renew(key_id, request_ids, self._lease_s, now)
        # While Redis is away its leases run out there, as a dead replica's would.
        if redis and self._redis is not None and not self._degraded:
            try:
                await self._redis.renew(redis, self._lease_s, now)
                self._timeouts = 0
            except _REDIS_FAILURES as exc:
                self._redis_failed("renew", exc)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self.renew()
            except Exception:  # the loop must outlive any bug in one round
                log.exception("slot lease renewal failed")

    async def close(self) -> None:
        for task in (self._probe_task, self._renew_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._probe_task = self._renew_task = None
        if self._redis is not None:
            await self._redis.close()

    def _redis_failed(self, op: str, exc: BaseException) -> None:
        self._metrics.limiter_redis_errors.labels(op).inc()
        if isinstance(exc, RedisTimeoutError):
            self._timeouts += 1
            if self._timeouts < _TIMEOUTS_TO_FALL_BACK:
                log.info("Redis timed out once; not falling back yet", extra={"op": op})
                return
        self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        if self._degraded:
            return
        self._degraded = True
        if self._redis is not None:
            # Queued behind the call that failed: to memory now, not after a timeout each.
            self._redis.fail_queued(RedisConnectionError("Redis is unreachable"))
        self._metrics.limiter_fallbacks.inc()
        self._set_gauge()
        log.warning(
            "Redis unreachable: rate limits are per replica, in memory, until it returns",
            extra={"error": repr(exc)},
        )
        self._probe_task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                await self._redis.ping()
            except Exception as exc:
                # Still down; anything unexpected must not end the probe either, or the
                # limiter would stay on memory for good.
                log.debug("Redis probe failed", extra={"error": repr(exc)})
                continue
            self._degraded = False
            self._timeouts = 0
            self._set_gauge()
            log.info("Redis is back: rate limits are shared across replicas again")
            return

    def _set_gauge(self) -> None:
        active = self.backend_name
        for name in ("memory", "redis"):
            self._metrics.limiter_backend.labels(name).set(1 if name == active else 0)
