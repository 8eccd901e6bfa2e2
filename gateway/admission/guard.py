"""Who may send this request, may they send it now, and what did it cost: the key, its
model access, its quota and limits, the settlement and the usage event.

Every engine call a client causes goes through one `Guard`: the proxy's requests, and
retrieval's embeddings on a key's behalf (gateway.rag.metering). It runs on every proxied
request, so each step is in memory unless a cache misses: the key from the key check's
cache, the quota from aggregated counters, the limits from the in-process or Redis
limiter (one round trip), the usage event appended to the writer's buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gateway.admission.cost import Cost, completion_reservation, request_cost
from gateway.config import Settings
from gateway.errors import PermissionDenied, QuotaExceeded, RateLimited
from gateway.http.asgi import RawHeaders, Scope
from gateway.http.ids import new_id
from gateway.keys.callers import KeyCheck
from gateway.keys.record import KeyRecord
from gateway.limits import Admission, Limiter, ratelimit_headers
from gateway.metrics import Metrics
from gateway.upstream.relay import RelayResult
from gateway.usage import QuotaChecker, UsageEvent, UsageWriter
from gateway.usage.event import end_user_subject

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
    # The person a trusted front end named (None otherwise), and what their own limits
    # reserved: held and settled beside the key's.
    end_user: str | None = None
    end_user_admission: Admission | None = None


def end_user_record(key: KeyRecord, end_user: str | None) -> KeyRecord | None:
    """The person's limits as a key record of their own (what the limiter and the quota
    checker take), under an id of their own; None when nothing limits them."""
    if end_user is None or not key.trusted_front_end:
        return None
    limits = key.end_user_limits(end_user)
    if limits.unlimited:
        return None
    return KeyRecord(
        id=end_user_subject(key.id, end_user),
        name=key.name,
        rpm=limits.rpm,
        tpm=limits.tpm,
        max_parallel=limits.max_parallel,
        daily_tokens=limits.daily_tokens,
        monthly_tokens=limits.monthly_tokens,
    )


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
        person = end_user_record(key, granted.end_user)
        # The key's quota and the person's first: nothing is reserved yet.
        for holder in (key, person):
            if holder is not None and self.quotas is not None:
                try:
                    await self.quotas.check(holder)
                except QuotaExceeded as exc:
                    self.metrics.rate_limited.labels("quota").inc()
                    if holder is person:
                        exc.message = f"As an end user of this key: {exc.message}"
                    raise
        if self.limiter is None:
            return
        # Slots are keyed by an id only the gateway makes: a client reusing its own
        # x-request-id must not share (and so dodge) an in-flight slot. The limiter
        # counts its refusals in gateway_rate_limited_total by kind.
        # (Each admission its own id: the limiter renews slot leases by request id.)
        tokens = granted.prompt_estimate + granted.completion_reserved
        if person is not None:
            try:
                granted.end_user_admission = await self.limiter.admit(person, new_id(), tokens)
            except RateLimited as exc:
                # Open WebUI shows this to the person: say whose limit it is.
                exc.message = f"Your own limit as an end user of this key: {exc.message}"
                raise
        try:
            granted.admission = await self.limiter.admit(key, new_id(), tokens)
        except BaseException:
            # Refused by the key's limits: give the person's reservation back.
            await self._release_end_user(granted, 0)
            raise
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

    async def settle(
        self, granted: Pass, result: RelayResult | Cost | None, *, answered: bool = False
    ) -> None:
        """Give back the in-flight slot and correct the token reservation to what was used
        (None: nothing ran). `answered`: the client has its answer (the limiter may then
        batch the release with the next request's admission)."""
        if isinstance(result, RelayResult):
            result = cost(granted, result)
        used = result.total if result is not None else 0
        await self._release_end_user(granted, used, answered=answered)
        admission, granted.admission = granted.admission, None
        if admission is None or self.limiter is None:
            return
        await self.limiter.settle(admission, used, answered=answered)

    async def _release_end_user(self, granted: Pass, used: int, *, answered: bool = False) -> None:
        admission, granted.end_user_admission = granted.end_user_admission, None
        if admission is not None and self.limiter is not None:
            await self.limiter.settle(admission, used, answered=answered)

    def record(self, event: UsageEvent) -> None:
        """Append a usage event (written in the next batch); nothing without a database."""
        if self.usage is not None:
            self.usage.record(event)
