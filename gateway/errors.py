"""Errors the gateway itself returns, all rendered in the OpenAI shape. Every class is here.

    GatewayError                    any error with a status, type, code and param
    ├── InvalidRequest              400 invalid_request_error (bad JSON, wrong types)
    │   ├── ContextLengthExceeded   400 context_length_exceeded
    │   └── UploadAbandoned         400 the client left mid-upload (nobody reads it)
    ├── AuthenticationError         401 invalid_api_key
    ├── PermissionDenied            403
    ├── NotFound                    404 (model_not_found, ...)
    ├── Conflict                    409 it exists already (adapter_exists)
    ├── RequestTimeout              408 the client sent its body too slowly
    ├── PayloadTooLarge             413 the body is over its route's cap
    ├── UnsupportedMediaType        415
    ├── RateLimited                 429 rate_limit_exceeded (retry after `retry-after`)
    │   ├── RequestTooLarge         429 over a limit on its own: waiting cannot help
    │   ├── QuotaExceeded           429 insufficient_quota: the day's or month's tokens are spent
    │   └── TooManyUploads          429 the key (or the process) has as many uploads as allowed
    ├── EmbeddingFailed             502 the embedding engine refused or failed
    ├── EngineRefused               502 an engine failed an operator's request (LoRA load)
    ├── UpstreamUnavailable         503 no healthy engine, or it refused the connection
    ├── DatabaseUnavailable         503 Postgres is unreachable (any route; see gateway.db.outage)
    │   └── NeedsDatabase           503 the route needs GATEWAY_DATABASE_URL (not retryable)
    ├── NoEmbeddingModel            503 retrieval needs GATEWAY_EMBEDDING_MODEL
    ├── SpoolUnavailable            503 the upload spool folder is missing, unwritable or full
    └── UpstreamTimeout             504 the engine went silent for longer than the read timeout

Routes raise these; the error renderer in `gateway.http` turns them into responses, and
into an SSE `data: {"error": ...}` event once a stream has started. Anything else that
escapes a route is a 500 `internal_error` carrying the request id (`gateway.http.context`,
and FastAPI's handler in `gateway.http.exception_handlers`), never a traceback; database
driver errors that mean an outage become `DatabaseUnavailable` in one place
(`gateway.db.outage`), and engine transport errors become `UpstreamUnavailable` or
`UpstreamTimeout` in one place (`gateway.upstream.engines`).
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    # Deterministic failures tell the SDKs not to retry (they honour x-should-retry).
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.body())


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"
    retryable = True  # the SDKs retry 408: a slow link may do better next time


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class UpstreamUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "upstream_unavailable"
    retryable = True


class DatabaseUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "database_unavailable"
    retryable = True


class UpstreamTimeout(GatewayError):
    status = 504
    type = "server_error"
    code = "upstream_timeout"
    retryable = True


class UploadAbandoned(InvalidRequest):
    """The client left mid-body; nobody reads this answer, nothing was kept."""


class RequestTooLarge(RateLimited):
    """429 for a request that exceeds a limit on its own: waiting cannot help."""

    retryable = False


class QuotaExceeded(RateLimited):
    """429 `insufficient_quota`, as OpenAI answers an exhausted quota. Retrying before the
    reset cannot succeed, so the SDKs are told not to."""

    type = "insufficient_quota"
    code = "insufficient_quota"
    retryable = False


class TooManyUploads(RateLimited):
    """429 `rate_limit_exceeded`: the SDKs retry it after `retry-after`."""


class EmbeddingFailed(GatewayError):
    """The engine refused or failed; `retryable` tells a transient failure from a bad input."""

    status = 502
    type = "server_error"
    code = "embedding_failed"
    engine_status: int | None = None  # what the engine answered, when it answered


class EngineRefused(GatewayError):
    """An engine answered an operator's request (an adapter load) with a server error."""

    status = 502
    type = "server_error"
    code = "engine_refused"


class NeedsDatabase(DatabaseUnavailable):
    code = "database_not_configured"
    retryable = False  # a configuration matter: retrying cannot help


class NoEmbeddingModel(GatewayError):
    status = 503
    type = "server_error"
    code = "embedding_model_not_configured"


class SpoolUnavailable(GatewayError):
    """503: the spool directory is missing, unwritable or full; retrying later may work."""

    status = 503
    type = "server_error"
    code = "spool_unavailable"
    retryable = True
