"""FastAPI's own errors (unknown route, validation, HTTPException) in the OpenAI shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway.errors import GatewayError, error_body
from gateway.http.errors import error_headers


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


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
