"""Who may send this request, and may they send it now: key, model access, quota, limits.

Runs on every proxied request, so each step is in memory unless a cache misses: the key
from the authenticator's cache, the quota from aggregated counters, the limits from the
in-process or Redis limiter (one round trip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from gateway.errors import PermissionDenied
from gateway.http.asgi import RawHeaders, Scope
from gateway.keys.record import KeyRecord
from gateway.limits import Admission, ratelimit_headers
from gateway.services import Services
from gateway.upstream.relay import RelayResult
from gateway.usage.quota import QuotaExceeded

# A rough prompt-token estimate for reservations: a few bytes of JSON per token. The
# reservation is corrected with vLLM's own count when the request ends.
_BYTES_PER_TOKEN = 4


@dataclass(slots=True)
class Pass:
    """What admission granted; settled once the request is over."""

    key: KeyRecord | None = None
    admission: Admission | None = None
    prompt_estimate: int = 0
    headers: RawHeaders = field(default_factory=list)


async def authenticate(services: Services, scope: Scope) -> KeyRecord | None:
    """The caller's key, or None when the gateway runs open (no database configured)."""
    if services.keys is None:
        return None
    return await services.keys.authenticate(scope)


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


async def admit(services: Services, granted: Pass, body_size: int, max_tokens: int | None) -> None:
    """Check the key's quota and reserve its rate limits; raises 429s."""
    key = granted.key
    if key is None:
        return
    if services.quotas is not None:
        try:
            await services.quotas.check(key)
        except QuotaExceeded:
            services.metrics.rate_limited.labels("quota").inc()
            raise
    if services.limiter is not None:
        granted.prompt_estimate = body_size // _BYTES_PER_TOKEN
        completion = max_tokens
        if completion is None:
            # No max_tokens: reserve the default, but at most a tenth of the key's tpm, or a
            # small-tpm key could send one request a minute. Settling corrects it anyway.
            completion = services.settings.default_max_tokens
            if key.tpm is not None:
                completion = max(1, min(completion, key.tpm // 10))
        # Slots are keyed by an id only the gateway makes: a client reusing its own
        # x-request-id must not share (and so dodge) an in-flight slot. The limiter counts
        # its refusals in gateway_rate_limited_total by kind (requests, tokens, slots).
        granted.admission = await services.limiter.admit(
            key, os.urandom(16).hex(), granted.prompt_estimate + completion
        )
        granted.headers = ratelimit_headers(granted.admission)


async def admit_internal(
    services: Services, key: KeyRecord | None, input_bytes: int, *, within_request: bool = False
) -> Pass:
    """Admission for an engine call the gateway makes on `key`'s behalf (embedding a
    search query, a document, file_search's query): the key's quota and limits as for a
    proxied request of `input_bytes` with nothing to generate. `within_request`: the call
    is part of a client request that already holds its request and in-flight slot (chat
    with file_search), so only its tokens count. Settle it with `settle` as usual."""
    granted = Pass(key=key)
    if key is not None and within_request:
        granted.key = replace(key, rpm=None, max_parallel=None)
    await admit(services, granted, input_bytes, 0)
    granted.key = key
    return granted


async def settle(services: Services, granted: Pass, result: RelayResult | None) -> None:
    """Give back the in-flight slot and correct the token reservation to what was used."""
    admission, granted.admission = granted.admission, None
    if admission is None or services.limiter is None:
        return
    actual: int | None = 0  # refused or failed upstream: nothing was generated
    if result is not None and result.status == 200:
        completion = result.completion_tokens
        if completion is None and result.cancelled:
            completion = result.chunks  # vLLM sends about one token per chunk
        if result.prompt_tokens is None and completion is None:
            actual = None  # no usage reported: keep the reservation
        else:
            actual = (result.prompt_tokens or granted.prompt_estimate) + (completion or 0)
    await services.limiter.settle(admission, actual)
