"""Who is calling, in each way the gateway runs: one `KeyCheck` for all three.

- with a database: every key in the key store (gateway.keys.auth.Authenticator);
- without one but with GATEWAY_ADMIN_KEY: the admin key is the only key;
- with neither: open, everyone anonymous (None), allowed only where the operator said so
  (`gateway serve` refuses a public address otherwise).
"""

from __future__ import annotations

from typing import Protocol

from gateway.config import Settings
from gateway.errors import AuthenticationError
from gateway.http.asgi import Scope
from gateway.keys.admin import is_admin_key
from gateway.keys.auth import ADMIN, INCORRECT_KEY, MISSING_KEY, Authenticator
from gateway.keys.credentials import presented_key
from gateway.keys.record import KeyRecord


class KeyCheck(Protocol):
    async def authenticate(self, scope: Scope) -> KeyRecord | None:
        """The caller's key (None: the gateway runs open); 401/503 otherwise."""
        ...


class OpenGateway:
    async def authenticate(self, scope: Scope) -> KeyRecord | None:
        return None


class AdminOnly:
    """No key store, but an admin key: it is the only key, rather than the gateway
    answering anyone."""

    def __init__(self, admin_key: str) -> None:
        self._admin_key = admin_key

    async def authenticate(self, scope: Scope) -> KeyRecord | None:
        presented = presented_key(scope)
        if presented is None:
            raise AuthenticationError(MISSING_KEY)
        if not is_admin_key(self._admin_key, presented):
            raise AuthenticationError(INCORRECT_KEY)
        return ADMIN


def key_check(settings: Settings, store: Authenticator | None) -> KeyCheck:
    if store is not None:
        return store
    secret = settings.admin_key.get_secret_value() if settings.admin_key else ""
    return AdminOnly(secret) if secret else OpenGateway()
