"""The registry with LoRA adapters as vLLM lists them: cards with `parent`."""

from __future__ import annotations

from gateway.upstream.registry import Registry

BASE = {"id": "base", "parent": None, "max_model_len": 2048}
ADAPTER = {"id": "sql", "parent": "base", "root": "/models/adapters/sql"}


def test_adapters_and_bases_apart() -> None:
    registry = Registry(["http://a", "http://b"])
    first, second = registry.upstreams
    registry.set_models(first, [BASE, ADAPTER])
    registry.set_models(second, [BASE])
    assert registry.serving_base("base") == [first, second]
    assert registry.serving_adapter("sql") == [first]
    assert registry.serving_base("sql") == [] and registry.serving_adapter("base") == []
    # Routed like any model, to the engines that have it.
    assert registry.candidates("sql") == ("sql", [first])


def test_an_adapter_has_its_base_models_length() -> None:
    registry = Registry(["http://a"])
    registry.set_models(registry.upstreams[0], [BASE, ADAPTER])
    assert registry.max_model_len("sql") == 2048
    assert registry.max_model_len("base") == 2048


def test_put_and_drop() -> None:
    registry = Registry(["http://a"])
    upstream = registry.upstreams[0]
    registry.set_models(upstream, [BASE])
    registry.put_model(upstream, ADAPTER)
    assert registry.serving_adapter("sql") == [upstream]
    registry.drop_model(upstream, "sql")
    assert registry.serving_adapter("sql") == [] and "sql" not in registry.model_cards()
