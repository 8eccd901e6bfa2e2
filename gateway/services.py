"""The per-process resources, created in the app's lifespan and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.upstream.monitor import Monitor
from gateway.upstream.registry import Registry
from gateway.upstream.relay import Relay


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    session: aiohttp.ClientSession
    registry: Registry
    monitor: Monitor
    relay: Relay
