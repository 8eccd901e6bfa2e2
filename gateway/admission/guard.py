"""Who may send this request, may they send it now, and what did it cost: the key, its
model access, its quota and limits, the settlement and the usage event.

Every engine call a client causes goes through one `Guard`: the proxy's requests, and
retrieval's embeddings on a key's behalf (gateway.rag.metering). It runs on every proxied
request, so each step is in memory unless a cache misses: the key from the key check's
cache, the quota from aggregated counters, the limits from the in-process or Redis
limiter (one round trip), the usage event appended to the writer's buffer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from gateway.admission.cost import Cost, completion_reservation, request_cost
from gateway.config import Settings
from gateway.errors import PermissionDenied, QuotaExceeded
from gateway.http.asgi import RawHeaders, Scope
from gateway.keys.callers import KeyCheck
from gateway.keys.record import KeyRecord
from gateway.limits import Admission, Limiter, ratelimit_headers
from gateway.metrics import Metrics
from gateway.upstream.relay import RelayResult
from gateway.usage import QuotaChecker, UsageEvent, UsageWriter

# A rough prompt-token estimate for callers that have only a size (see cost.py for the
# proxy's): a few bytes of JSON per token, corrected with vLLM's count at the end.
_BYTES_PER_TOKEN = 4


@dataclass(slots=True)
class Pass:
    """What admission granted; settled once the request is over."""

    key: KeyRecord | None = None
    admission: Admission | None = None
    prompt_estimate: int = 0
    # The answer tokens reserved (max_tokens for every answer): what a non-streamed
    # request is charged when it ends before its answer says what it used.
    completion_reserved: int = 0
    headers: RawHeaders = field(default_factory=list)


def check_model_access(key: KeyRecord | None, model: str, requested: str) -> None:
    """A key restricted to some models learns nothing about the others: every model
    outside its list, existing or not, is the same 403."""
    if key is not None and not key.allows(model):
        raise PermissionDenied(
            f"This API key is not allowed to use the model `{requested}`.",
            param="model",
            code="model_not_allowed",
        )


def visible(key: KeyRecord | None, model: str) -> bool:
    return key is None or key.allows(model)


def cost(granted: Pass, result: RelayResult) -> Cost:
    """What the request is charged: the same figure settles its reservation, counts its
    tokens in the metrics and goes into its usage event."""
    return request_cost(
        dispatched=result.dispatched,
        status=result.status,
        streamed=result.streamed,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        relayed_chunks=result.chunks,
        prompt_estimate=granted.prompt_estimate,
        completion_reserved=granted.completion_reserved,
    )


class Guard:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        keys: KeyCheck,
        *,
        quotas: QuotaChecker | None = None,
        limiter: Limiter | None = None,
        usage: UsageWriter | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.keys = keys
        self.quotas = quotas
        self.limiter = limiter
        self.usage = usage

    async def authenticate(self, scope: Scope) -> KeyRecord | None:
        """The caller's key, or None when the gateway runs open (no database, no admin key)."""
        return await self.keys.authenticate(scope)

    async def admit(
        self,
        granted: Pass,
        body_size: int,
        max_tokens: int | None,
        *,
        sequences: int = 1,
        prompt_tokens: int | None = None,
    ) -> None:
        """Check the key's quota and reserve its rate limits; raises 429s.

        The reservation is the prompt (`prompt_tokens`, else estimated from `body_size`)
        plus `max_tokens` for each of the `sequences` answers the engine will write."""
        key = granted.key
        granted.prompt_estimate = (
            prompt_tokens if prompt_tokens is not None else body_size // _BYTES_PER_TOKEN
        )
        granted.completion_reserved = completion_reservation(
            max_tokens,
            sequences,
            self.settings.default_max_tokens,
            key.tpm if key is not None else None,
        )
        if key is None:
            return
        if self.quotas is not None:
            try:
                await self.quotas.check(key)
            except QuotaExceeded:
                self.metrics.rate_limited.labels("quota").inc()
                raise
        if self.limiter is not None:
            # Slots are keyed by an id only the gateway makes: a client reusing its own
            # x-request-id must not share (and so dodge) an in-flight slot. The limiter
            # counts its refusals in gateway_rate_limited_total by kind.
            granted.admission = await self.limiter.admit(
                key, os.urandom(16).hex(), granted.prompt_estimate + granted.completion_reserved
            )
            granted.headers = ratelimit_headers(granted.admission)

    async def admit_internal(
        self, key: KeyRecord | None, input_bytes: int, *, within_request: bool = False
    ) -> Pass:
        """Admission for an engine call the gateway makes on `key`'s behalf (embedding a
        search query, a document, file_search's query): the key's quota and limits as for
        a proxied request of `input_bytes` with nothing to generate. `within_request`: the
        call is part of a client request that already holds its request and in-flight
        slot (chat with file_search), so only its tokens count. Settle it as usual."""
        granted = Pass(key=key)
        if key is not None and within_request:
            granted.key = replace(key, rpm=None, max_parallel=None)
        await self.admit(granted, input_bytes, 0)  # nothing to generate
        granted.key = key
        return granted

    async def settle(self, granted: Pass, result: RelayResult | Cost | None) -> None:
        """Give back the in-flight slot and correct the token reservation to what was used
        (None: nothing ran)."""
        admission, granted.admission = granted.admission, None
        if admission is None or self.limiter is None:
            return
        if isinstance(result, RelayResult):
            result = cost(granted, result)
        await self.limiter.settle(admission, result.total if result is not None else 0)

    def record(self, event: UsageEvent) -> None:
        """Append a usage event (written in the next batch); nothing without a database."""
        if self.usage is not None:
            self.usage.record(event)
