"""The admin bearer (`GATEWAY_ADMIN_KEY`) guarding `/admin/*`, compared in constant time."""

from __future__ import annotations

import hmac


def is_admin_key(settings_admin_key: str | None, presented: str | None) -> bool:
    if not settings_admin_key or not presented:
        return False
    return hmac.compare_digest(settings_admin_key.encode(), presented.encode())
