"""The switcher of the configured engine groups, with each engine's control backend."""

from __future__ import annotations

import aiohttp

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.upstream.client import upstream_headers
from gateway.upstream.registry import Registry
from gateway.upstream.switching.backends import Control, ProcessControl, SleepApi
from gateway.upstream.switching.controller import Switcher


def build_switcher(
    settings: Settings, session: aiohttp.ClientSession, registry: Registry, metrics: Metrics
) -> Switcher | None:
    """None without engine groups: then nothing on the request path changes."""
    if not settings.engine_groups:
        return None
    headers = upstream_headers(settings, "engine-switch")
    key = settings.upstream_api_key
    controls: dict[str, Control] = {}
    for group in settings.engine_groups:
        for engine in group.engines:
            if engine.control == "sleep":
                controls[engine.url] = SleepApi(session, engine, headers)
            else:
                controls[engine.url] = ProcessControl(
                    session,
                    engine,
                    headers,
                    start_timeout_s=group.switch_timeout_s,
                    api_key=key.get_secret_value() if key else None,
                )
    return Switcher(settings.engine_groups, registry, controls, metrics)
