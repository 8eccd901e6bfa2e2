"""Where clients put their key: `Authorization: Bearer` (OpenAI SDKs), `api-key` (Azure
style, Continue) or `x-api-key`."""

from __future__ import annotations

from gateway.http.asgi import Scope

_HEADERS = (b"authorization", b"api-key", b"x-api-key")


def presented_key(scope: Scope) -> str | None:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS and name not in found:
            found[name] = value
    auth = found.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    for name in (b"api-key", b"x-api-key"):
        value = found.get(name)
        if value and value.strip():
            return value.decode("latin-1").strip()
    return None
