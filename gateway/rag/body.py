"""JSON request bodies for the retrieval routes, read with the gateway's body size limit."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from gateway.errors import InvalidRequest, PayloadTooLarge


async def json_body(request: Request) -> dict[str, Any]:
    limit: int = request.app.state.services.settings.max_body_bytes
    raw = bytearray()
    async for piece in request.stream():
        raw.extend(piece)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body
