"""The HTTP client to the engines: one aiohttp session per process, opened in the lifespan.

aiohttp rather than httpx: under concurrency httpx's pool costs several times the
throughput (encode/httpx#3215); `benchmarks/` measures both.
"""

from __future__ import annotations

import aiohttp

from gateway.config import Settings


def create_session(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # the engines queue requests themselves; a pool cap would only add latency
        ttl_dns_cache=300,
        keepalive_timeout=30,
        enable_cleanup_closed=True,
    )
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.connect_timeout_s,
        sock_connect=settings.connect_timeout_s,
        sock_read=settings.read_timeout_s,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding", "User-Agent"),
        raise_for_status=False,
    )


def upstream_headers(settings: Settings, request_id: str) -> dict[str, str]:
    """Headers for a call to an engine. The client's own key never travels upstream."""
    headers = {"content-type": "application/json", "x-request-id": request_id}
    if settings.upstream_api_key is not None:
        headers["authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
    return headers
