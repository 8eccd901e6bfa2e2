"""The admin bearer (`GATEWAY_ADMIN_KEY`) on `/admin/*`: a FastAPI dependency."""

from __future__ import annotations

from fastapi import Request

from gateway.errors import AuthenticationError, PermissionDenied
from gateway.http.app_state import settings_of
from gateway.keys.admin import is_admin_key
from gateway.keys.credentials import presented_key


async def require_admin(request: Request) -> None:
    """FastAPI dependency for admin routes."""
    settings = settings_of(request)
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
