"""The admin bearer (`GATEWAY_ADMIN_KEY`) guarding `/admin/*`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from gateway.errors import AuthenticationError, PermissionDenied
from gateway.keys.credentials import presented_key


def is_admin_key(settings_admin_key: str | None, presented: str | None) -> bool:
    if not settings_admin_key or not presented:
        return False
    return hmac.compare_digest(settings_admin_key.encode(), presented.encode())


async def require_admin(request: Request) -> None:
    """FastAPI dependency for admin routes."""
    settings = request.app.state.services.settings
    configured = settings.admin_key.get_secret_value() if settings.admin_key else None
    if not configured:
        raise PermissionDenied(
            "Admin routes are disabled: set GATEWAY_ADMIN_KEY on the gateway to enable them."
        )
    presented = presented_key(request.scope)
    if presented is None:
        raise AuthenticationError(
            "You didn't provide an API key. Send the admin key as `Authorization: Bearer ...`."
        )
    if not is_admin_key(configured, presented):
        raise PermissionDenied("This route needs the admin key (GATEWAY_ADMIN_KEY).")
