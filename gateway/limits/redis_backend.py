"""Limits shared by every replica through Redis: one script per admission, one per settle,
pipelined with the others queued meanwhile (see redis_batch.py)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.limits import _lua
from gateway.limits.bucket import Decision, Limits, Refused
from gateway.limits.redis_batch import ScriptBatcher

# The limiter sits on every request's path: a Redis that does not answer within this is
# treated as down (the limiter falls back to memory) rather than waited for.
DEFAULT_TIMEOUT_S = 0.25
# A settle (its request already answered) waits this long for the next admission to
# share its round trip; a slot is then given back at most this much later.
SETTLE_WAITS_S = 0.005


def _arg(value: int | float | None) -> int | float | str:
    return "" if value is None else value


class RedisBackend:
    name = "redis"

    def __init__(self, client: Redis, prefix: str = "gw:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(_lua.ADMIT)
        self._settle = client.register_script(_lua.SETTLE)
        self._renew = client.register_script(_lua.RENEW)
        self._batch = ScriptBatcher(client)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "gw:rl:",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = 4,
    ) -> RedisBackend:
        pool = BlockingConnectionPool.from_url(
            url,
            # Admissions and settles share one pipeline at a time (redis_batch.py); the
            # recovery probe and script loads need the others.
            max_connections=max_connections,
            timeout=None,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry on a dropped connection (a restarted Redis leaves dead
            # sockets in the pool), none on timeouts: a hung Redis must cost one timeout.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        client = Redis.from_pool(pool)
        return cls(client, prefix)

    def keys(self, key_id: str) -> list[str]:
        # The braces are a cluster hash tag: both keys of a script land on one shard.
        base = f"{self._prefix}{{{key_id}}}"
        return [base + ":b", base + ":s"]

    async def ping(self) -> None:
        """Raise unless Redis answers; also loads the scripts so EVALSHA finds them."""
        await self._client.ping()
        self._admit.sha = await self._client.script_load(_lua.ADMIT)
        self._settle.sha = await self._client.script_load(_lua.SETTLE)
        self._renew.sha = await self._client.script_load(_lua.RENEW)

    async def admit(
        self,
        key_id: str,
        limits: Limits,
        request_id: str,
        cost_tokens: int,
        lease_s: float,
        now: float | None = None,
    ) -> Decision:
        args = [
            _arg(now),
            _arg(limits.rpm),
            _arg(limits.tpm),
            _arg(limits.max_parallel),
            cost_tokens,
            request_id,
            lease_s,
        ]
        reply: bytes = await self._batch.call(self._admit, self.keys(key_id), args)
        admitted, refused, wait, req, tok, in_flight = reply.split()
        return Decision(
            admitted=admitted == b"1",
            refused=None if refused == b"-" else cast(Refused, refused.decode()),
            retry_after_s=float(wait),
            requests=float(req),
            tokens=float(tok),
            in_flight=int(in_flight),
        )

    async def settle(
        self,
        key_id: str,
        limits: Limits,
        request_id: str | None,
        delta_tokens: int,
        now: float | None = None,
        *,
        answered: bool = False,
    ) -> bool:
        """Release the lease and correct the reservation; True if a lease was released.
        `answered`: the request's client has its answer, so this may wait a little for
        the next admission to share its round trip."""
        args = [_arg(now), _arg(limits.rpm), _arg(limits.tpm), delta_tokens, request_id or ""]
        released = await self._batch.call(
            self._settle, self.keys(key_id), args, within_s=SETTLE_WAITS_S if answered else 0.0
        )
        return bool(released)

    async def renew(
        self, leases: dict[str, list[str]], lease_s: float, now: float | None = None
    ) -> int:
        """Extend the leases of these request ids (by key id) that are still held: one
        script per key, all in one pipeline. Returns how many were extended."""
        calls = [
            (self._renew, self.keys(key_id)[1:], [_arg(now), lease_s, *request_ids])
            for key_id, request_ids in leases.items()
        ]
        return sum(int(n) for n in await self._batch.call_many(calls))

    def fail_queued(self, exc: BaseException) -> None:
        """Calls not sent to Redis yet fail now with `exc` (Redis was found dead)."""
        self._batch.fail_queued(exc)

    async def close(self) -> None:
        await self._batch.drain()
        await self._client.aclose()
