"""Loading and unloading LoRA adapters on the engines, and keeping them loaded.

An adapter is loaded on every engine serving its base model and then listed (and routed)
as a model of its own: the registry learns it from the engine's `/v1/models`, where vLLM
lists it with `parent` = the base model, exactly as discovery finds any model. Keys'
model lists, usage rows (`model` = the adapter's name) and `/v1/models` need nothing new.

The adapters asked for are *wanted*: the configuration's `lora_adapters`, and those
loaded through the admin API (with a database they are stored, gateway.upstream.adapters.
store: shared by every worker and replica and kept across restarts; without one, this
process's since it started). An engine that comes back without them (restarted, or a
grouped engine woken by starting its process) gets them loaded again, after each discovery
and after each wake. A grouped engine asleep when an adapter is asked for gets it on its
next wake; meanwhile the adapter is listed, and a request for it wakes the engine like a
request for its base model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Conflict, GatewayError, InvalidRequest, NotFound
from gateway.upstream.adapters import engine_api
from gateway.upstream.adapters.spec import AdapterPathError, AdapterSpec, confined_path
from gateway.upstream.adapters.store import AdapterStore
from gateway.upstream.engines import Engines, engine_message
from gateway.upstream.registry import Upstream

log = logging.getLogger("gateway.upstream.adapters")

# How stale this process's copy of the stored adapters may be when nothing is missing
# from an engine; before loading one again it reads them afresh, and the admin list too.
SYNC_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Wanted:
    spec: AdapterSpec
    path: str  # inside the models directory, as the engines read it
    declared: bool  # from the configuration (else from the admin API)


class Adapters:
    def __init__(
        self,
        engines: Engines,
        models_dir: str,
        rediscover: Callable[[Upstream], Awaitable[None]],
        declared: list[AdapterSpec] = [],  # noqa: B006 (never mutated)
        store: AdapterStore | None = None,
    ) -> None:
        self.engines = engines
        self.store = store
        self.registry = engines.registry
        self.models_dir = models_dir
        self.rediscover = rediscover
        self.wanted: dict[str, Wanted] = {}
        self._loading: set[str] = set()  # names being loaded: a second load is a 409 too
        self._synced_at = float("-inf")
        self._sync_lock = asyncio.Lock()
        for spec in declared:  # their paths were checked with the settings
            self.wanted[spec.name] = Wanted(spec, confined_path(models_dir, spec.path), True)

    # -- the admin API -------------------------------------------------------------------
    async def load(self, spec: AdapterSpec, request_id: str) -> dict[str, Any]:
        try:
            path = confined_path(self.models_dir, spec.path)
        except AdapterPathError as exc:
            raise InvalidRequest(str(exc), param="path", code="invalid_adapter_path") from exc
        name, base = spec.name, self.registry.served_id(spec.base_model)
        taken = name in self.wanted or name in self._loading or name in self.registry.model_cards()
        # An alias (or a `claude-*` prefix) would send the adapter's requests elsewhere.
        if taken or self.registry.served_id(name) != name:
            raise _exists(name)
        targets = self.registry.serving_base(base)
        if not targets:
            raise NotFound(
                f"No engine serves the base model `{spec.base_model}`.",
                param="base_model",
                code="model_not_found",
            )
        wanted = Wanted(spec.model_copy(update={"base_model": base}), path, declared=False)
        self._loading.add(name)
        try:
            # Stored first: the name is then taken for every process, and one that reads
            # it meanwhile loads the same adapter ("already loaded" is fine).
            if self.store is not None and not await self.store.add(wanted.spec):
                raise _exists(name)
            try:
                loaded = await self._load_everywhere(targets, wanted, request_id)
            except GatewayError:
                if self.store is not None:
                    await self.store.remove(name)
                raise
        finally:
            self._loading.discard(name)
        self.wanted[name] = wanted
        for upstream in targets:
            self.registry.put_model(upstream, _card(wanted))
        for upstream in loaded:
            await self.rediscover(upstream)
        log.info("lora adapter loaded", extra={"model": name, "engines": len(targets)})
        return self._view(name)

    async def _load_everywhere(
        self, targets: list[Upstream], wanted: Wanted, request_id: str
    ) -> list[Upstream]:
        """The awake engines it was loaded on; asleep ones get it when they wake. All or
        nothing: replicas that disagree would answer some requests and 404 others."""
        loaded: list[Upstream] = []
        try:
            for upstream in targets:
                if not self._asleep(upstream):
                    await self._load_on(upstream, wanted, request_id, tolerate_loaded=False)
                    loaded.append(upstream)
        except GatewayError:
            for upstream in loaded:
                await self._unload_quietly(upstream, wanted.spec.name, request_id)
            raise
        return loaded

    async def unload(self, name: str, request_id: str) -> dict[str, Any]:
        await self.sync()  # loaded through another process, maybe
        wanted = self.wanted.get(name)
        serving = self.registry.serving_adapter(name)
        if wanted is None and not serving:
            if self.registry.serving_base(name):
                raise InvalidRequest(
                    f"`{name}` is a base model, not a LoRA adapter.", code="not_an_adapter"
                )
            raise NotFound(f"No LoRA adapter named `{name}`.", code="adapter_not_found")
        view = self._view(name)
        self.wanted.pop(name, None)
        if self.store is not None:  # first, so that no other process loads it again
            await self.store.remove(name)
        if wanted is not None:  # on engines this process has not seen it on yet, too
            base = self.registry.served_id(wanted.spec.base_model)
            serving += [u for u in self.registry.serving_base(base) if u not in serving]
        for upstream in serving:
            if not self._asleep(upstream):
                status, payload = await engine_api.call(
                    self.engines.session,
                    upstream.url,
                    engine_api.UNLOAD,
                    {"lora_name": name},
                    self.engines.headers(request_id),
                )
                # 404: gone already (the engine restarted), which is what was asked.
                if status != 404 and (
                    err := engine_api.refusal(upstream.url, status, payload, f"unloading `{name}`")
                ):
                    raise err
            self.registry.drop_model(upstream, name)
        log.info("lora adapter unloaded", extra={"model": name})
        return {**view, "deleted": True}

    async def listing(self) -> list[dict[str, Any]]:
        await self.sync()
        names = set(self.wanted)
        for upstream in self.registry.upstreams:
            names.update(n for n, card in upstream.models.items() if card.get("parent"))
        return [self._view(name) for name in sorted(names)]

    # -- keeping them loaded -------------------------------------------------------------
    async def sync(self, max_age_s: float = 0.0) -> None:
        """Adopt the stored adapters another process (or this one before a restart) loaded,
        and forget those another process unloaded, unless read less than `max_age_s` ago.
        The database being down leaves the list as it was."""
        if self.store is None or time.monotonic() - self._synced_at < max_age_s:
            return
        async with self._sync_lock:
            if time.monotonic() - self._synced_at < max_age_s:
                return  # read by another caller meanwhile
            try:
                stored = {spec.name: spec for spec in await self.store.all()}
            except (SQLAlchemyError, OSError) as exc:
                log.warning("lora adapters not read", extra={"error": str(exc)})
                return
            self._synced_at = time.monotonic()
        for name, wanted in list(self.wanted.items()):
            if not wanted.declared and name not in stored and name not in self._loading:
                del self.wanted[name]
        for name, spec in stored.items():
            if name in self.wanted or name in self._loading:
                continue
            try:
                path = confined_path(self.models_dir, spec.path)
            except AdapterPathError as exc:  # GATEWAY_MODELS_DIR changed since it was loaded
                log.error("lora adapter not restored", extra={"model": name, "error": str(exc)})
                continue
            self.wanted[name] = Wanted(spec, path, declared=False)

    async def restore(self, upstream: Upstream, *, after_restart: bool = False) -> None:
        """Load the wanted adapters this engine should have and lacks. After a restart
        (a grouped engine's wake) its model list is stale: every one is loaded, and
        "already loaded" is fine. Failures are logged, never raised: the caller is the
        monitor or a switch, and the adapter's own requests will say what is wrong."""
        await self.sync(SYNC_EVERY_S)
        missing = self._missing(upstream, after_restart)
        if any(not wanted.declared for wanted in missing):
            await self.sync()  # unloaded through another process since? then it stays so
            missing = self._missing(upstream, after_restart)
        for wanted in missing:
            try:
                await self._load_on(upstream, wanted, "adapter-restore", tolerate_loaded=True)
            except GatewayError as exc:
                log.error(
                    "lora adapter restore failed",
                    extra={"upstream": upstream.url, "model": wanted.spec.name, "error": str(exc)},
                )
                continue
            self.registry.put_model(upstream, _card(wanted))
            log.info(
                "lora adapter restored",
                extra={"upstream": upstream.url, "model": wanted.spec.name},
            )

    async def restore_after_restart(self, upstream: Upstream) -> None:
        await self.restore(upstream, after_restart=True)

    # -- helpers ---------------------------------------------------------------------------
    def _missing(self, upstream: Upstream, after_restart: bool) -> list[Wanted]:
        """The wanted adapters of this engine's base models that it lacks (all of them
        after a restart: its model list is stale)."""
        missing = []
        for wanted in self.wanted.values():
            base = self.registry.served_id(wanted.spec.base_model)
            card = upstream.models.get(base)
            if card is None or card.get("parent"):
                continue
            listed = upstream.models.get(wanted.spec.name)
            if after_restart or listed is None or not listed.get("parent"):
                missing.append(wanted)
        return missing

    def _asleep(self, upstream: Upstream) -> bool:
        switcher = self.engines.switcher
        return switcher is not None and switcher.asleep(upstream)

    async def _load_on(
        self, upstream: Upstream, wanted: Wanted, request_id: str, *, tolerate_loaded: bool
    ) -> None:
        name = wanted.spec.name
        status, payload = await engine_api.call(
            self.engines.session,
            upstream.url,
            engine_api.LOAD,
            {"lora_name": name, "lora_path": wanted.path},
            self.engines.headers(request_id),
        )
        message = engine_message(payload) or ""
        if tolerate_loaded and status == 400 and engine_api.ALREADY_LOADED in message:
            return
        error = engine_api.refusal(upstream.url, status, payload, f"loading `{name}`", "path")
        if error is not None:
            raise error

    async def _unload_quietly(self, upstream: Upstream, name: str, request_id: str) -> None:
        try:
            await engine_api.call(
                self.engines.session,
                upstream.url,
                engine_api.UNLOAD,
                {"lora_name": name},
                self.engines.headers(request_id),
            )
        except GatewayError as exc:
            log.warning(
                "lora adapter rollback failed",
                extra={"upstream": upstream.url, "model": name, "error": str(exc)},
            )

    def _view(self, name: str) -> dict[str, Any]:
        wanted = self.wanted.get(name)
        serving = self.registry.serving_adapter(name)
        card = serving[0].models[name] if serving else {}
        return {
            "object": "adapter",
            "id": name,
            "base_model": wanted.spec.base_model if wanted else card.get("parent"),
            "path": wanted.path if wanted else card.get("root"),
            "engines": [u.url for u in serving],
            # Loaded again whenever an engine comes back without it.
            "kept": wanted is not None,
            "declared": wanted.declared if wanted else False,
        }


def _exists(name: str) -> Conflict:
    return Conflict(
        f"A model or adapter named `{name}` exists already; unload it first or "
        "choose another name.",
        param="name",
        code="adapter_exists",
    )


def _card(wanted: Wanted) -> dict[str, Any]:
    """The model card vLLM would list for the adapter, until discovery brings its own."""
    return {
        "id": wanted.spec.name,
        "object": "model",
        "created": 0,
        "owned_by": "vllm",
        "root": wanted.path,
        "parent": wanted.spec.base_model,
    }
