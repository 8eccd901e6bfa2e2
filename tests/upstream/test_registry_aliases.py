"""Model aliases: exact names, and prefixes (`claude-*`) for clients that send dated names."""

from __future__ import annotations

from gateway.upstream.registry import Registry


def test_exact_then_longest_prefix() -> None:
    registry = Registry(
        [],
        {
            "claude-*": "big",
            "claude-haiku-*": "small",
            "claude-haiku-4-5": "exact",
            "gpt-4o-mini": "big",
        },
    )
    assert registry.served_id("claude-sonnet-4-5-20250929") == "big"
    assert registry.served_id("claude-haiku-4-5-20251001") == "small"
    assert registry.served_id("claude-haiku-4-5") == "exact"
    assert registry.served_id("gpt-4o-mini") == "big"
    assert registry.served_id("claude") == "claude"  # not the prefix `claude-`
    assert registry.served_id("other") == "other"


def test_prefix_aliases_are_not_listed_as_models() -> None:
    registry = Registry(["http://e"], {"claude-*": "m", "gpt-4o-mini": "m"})
    registry.set_models(registry.upstreams[0], [{"id": "m"}])
    assert set(registry.model_cards()) == {"m", "gpt-4o-mini"}
