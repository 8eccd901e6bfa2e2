"""Settings for the `gateway` commands: bad configuration is a readable exit, not a trace."""

from __future__ import annotations

import ipaddress
from typing import Any

import click
from pydantic import ValidationError

from gateway.config import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/YAML plus CLI overrides (None means "not given")."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  GATEWAY_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise click.ClickException("invalid configuration:\n" + "\n".join(lines)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may well resolve to a public interface


def open_exposure(settings: Settings) -> str | None:
    """Why `gateway serve` must not start as configured: it would answer anyone on the
    network without a key. None when it has keys, an admin key, a loopback host, or the
    operator chose to run open (GATEWAY_ALLOW_OPEN=true)."""
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else ""
    if settings.database_url or admin_key or settings.allow_open or is_loopback(settings.host):
        return None
    return (
        f"GATEWAY_DATABASE_URL is not set, so there are no API keys: on {settings.host} the "
        "gateway would serve /v1 to anyone who can reach it. Set GATEWAY_DATABASE_URL (keys, "
        "limits and usage), or GATEWAY_ADMIN_KEY (then /v1 takes only that key), or listen "
        "on 127.0.0.1 (--host), or set GATEWAY_ALLOW_OPEN=true to run open on purpose."
    )
