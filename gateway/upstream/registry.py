"""Which engines exist, which models each serves, and which are healthy.

State only: discovery and health checks (`monitor.py`) write it, the proxy reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import NotFound, UpstreamUnavailable


@dataclass(slots=True, eq=False)
class Upstream:
    url: str
    healthy: bool = False
    in_flight: int = 0
    # Model cards exactly as the engine reported them (vLLM adds max_model_len, root, ...).
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    discovered: bool = False
    last_error: str | None = None
    # In an engine group (gateway.upstream.switching): the group and the one model the
    # configuration says it serves (listed even while the engine sleeps).
    group: str | None = None
    group_model: str | None = None


class Registry:
    def __init__(self, urls: list[str], aliases: dict[str, str] | None = None) -> None:
        self.upstreams = [Upstream(url) for url in dict.fromkeys(urls)]
        self.aliases = dict(aliases or {})
        # `claude-*`: every name with that prefix (Claude Code sends dated model names);
        # the longest prefix wins, an exact alias before any.
        self._prefixes = sorted(
            ((name[:-1], target) for name, target in self.aliases.items() if name.endswith("*")),
            key=lambda pair: -len(pair[0]),
        )
        self._by_model: dict[str, list[Upstream]] = {}

    def set_models(self, upstream: Upstream, cards: list[dict[str, Any]]) -> None:
        models = {str(card["id"]): card for card in cards if "id" in card}
        grouped = upstream.group_model
        if grouped is not None and grouped not in models:
            # A grouped engine is asked only while awake; what it is configured to serve
            # stays listed (and routed to it) whatever it reported.
            models[grouped] = upstream.models.get(grouped) or _declared_card(grouped)
        upstream.models = models
        upstream.discovered = True
        self._reindex()

    def declare_grouped(self, url: str, group: str, model: str) -> Upstream:
        """A grouped engine serves `model` before it ever answers: sleeping, it cannot."""
        upstream = next(u for u in self.upstreams if u.url == url)
        upstream.group, upstream.group_model = group, model
        upstream.healthy = True  # until a health check of the awake engine says otherwise
        self.set_models(upstream, [])
        return upstream

    def put_model(self, upstream: Upstream, card: dict[str, Any]) -> None:
        """List one more model on `upstream` before its next discovery says so (a LoRA
        adapter just loaded, or waiting for its sleeping engine to wake)."""
        upstream.models = {**upstream.models, str(card["id"]): card}
        self._reindex()

    def drop_model(self, upstream: Upstream, model: str) -> None:
        if model in upstream.models and model != upstream.group_model:
            upstream.models = {k: v for k, v in upstream.models.items() if k != model}
            self._reindex()

    def serving_base(self, model: str) -> list[Upstream]:
        """The engines serving `model` itself: vLLM lists a LoRA adapter with its base
        model as `parent`; a base model has none."""
        return [u for u in self._by_model.get(model, ()) if not u.models[model].get("parent")]

    def serving_adapter(self, name: str) -> list[Upstream]:
        """The engines listing `name` as a LoRA adapter (with a `parent`)."""
        return [u for u in self._by_model.get(name, ()) if u.models[name].get("parent")]

    def _reindex(self) -> None:
        index: dict[str, list[Upstream]] = {}
        for upstream in self.upstreams:
            for model_id in upstream.models:
                index.setdefault(model_id, []).append(upstream)
        self._by_model = index

    def served_id(self, requested: str) -> str:
        found = self.aliases.get(requested)
        if found is not None:
            return found
        for prefix, target in self._prefixes:
            if requested.startswith(prefix):
                return target
        return requested

    def candidates(self, requested: str) -> tuple[str, list[Upstream]]:
        """The served model id and the upstreams that serve it.

        Raises 404 for a model nobody serves, but 503 while no engine has answered
        discovery yet: an engine still loading its weights is not a wrong model name.
        """
        model = self.served_id(requested)
        found = self._by_model.get(model)
        if found:
            return model, found
        if not any(u.discovered for u in self.upstreams):
            raise UpstreamUnavailable(
                "No inference engine has answered yet; it may still be loading the model. "
                "Retry shortly, or check GATEWAY_UPSTREAMS and /readyz."
            )
        raise NotFound(
            f"The model `{requested}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    def model_cards(self) -> dict[str, dict[str, Any]]:
        """Every served model (first upstream's card wins) plus configured aliases."""
        cards: dict[str, dict[str, Any]] = {}
        for upstream in self.upstreams:
            for model_id, card in upstream.models.items():
                cards.setdefault(model_id, card)
        for alias, target in self.aliases.items():
            if target in cards and alias not in cards and not alias.endswith("*"):
                cards[alias] = {**cards[target], "id": alias, "root": target}
        return cards

    def max_model_len(self, model: str) -> int | None:
        """The context length an engine reports for `model` (vLLM's card field), if any."""
        served = self.served_id(model)
        for upstream in self._by_model.get(served, ()):
            card = upstream.models[served]
            value = card.get("max_model_len")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            # vLLM's card for a LoRA adapter has no length: its base model's applies.
            parent = card.get("parent")
            if isinstance(parent, str) and parent != served and parent in upstream.models:
                value = upstream.models[parent].get("max_model_len")
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
        return None

    def any_healthy(self) -> bool:
        return any(u.healthy for u in self.upstreams)


def _declared_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "vllm"}
