"""What vLLM said when it refused: read from its OpenAI-shaped error body or the older flat
one (used by the embedding client and the LoRA admin routes)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.upstream.engines import engine_message


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "too long", "type": "BadRequestError"}}, "too long"),
        ({"object": "error", "message": "no such adapter", "code": 404}, "no such adapter"),
        ({"detail": "Not Found"}, None),  # FastAPI's bare 404: the route is not there
        ({"error": "flat"}, None),
        ("Internal Server Error", None),
        (None, None),
    ],
)
def test_engine_message(payload: Any, message: str | None) -> None:
    assert engine_message(payload) == message
