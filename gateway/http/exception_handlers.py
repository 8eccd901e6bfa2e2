"""Every error on a FastAPI route in the OpenAI shape: ours, FastAPI's own (unknown route,
validation, HTTPException), database outages (503) and anything unexpected (500).

FastAPI's outermost ServerErrorMiddleware answers an unhandled exception before any outer
middleware sees it (in plain text, by default): the handler for `Exception` here is the
one it calls, and the exception then goes on up to `RequestContextMiddleware`, which logs
it with its traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from gateway.db.outage import DATABASE_ERRORS, outage
from gateway.errors import GatewayError, error_body
from gateway.http.context import CONTEXT_KEY
from gateway.http.errors import error_headers, internal_error

error_log = logging.getLogger("gateway.error")


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    headers = {k.decode(): v.decode() for k, v in error_headers(exc)}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}."
        body = error_body(message, "invalid_request_error", None, "unknown_url")
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
        body = error_body(message, "invalid_request_error", None, "method_not_allowed")
    else:
        body = error_body(str(exc.detail), "invalid_request_error")
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(loc) or None
    message = (
        f"Invalid value for `{param}`: {first.get('msg', 'invalid')}."
        if param
        else str(first.get("msg", "Invalid request."))
    )
    return JSONResponse(
        error_body(message, "invalid_request_error", param, None),
        status_code=400,
        headers={"x-should-retry": "false"},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    unavailable = outage(exc)
    if unavailable is None:
        raise exc  # a bug, not an outage: on to the 500 below
    error_log.warning(
        "database unreachable (%s)", type(exc).__name__, extra={"request_id": _request_id(request)}
    )
    return await _gateway_error(request, unavailable)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return Response(
        internal_error(_request_id(request)), status_code=500, media_type="application/json"
    )


def _request_id(request: Request) -> str:
    context = request.scope.get(CONTEXT_KEY)
    return context.request_id if context is not None else "unknown"


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
