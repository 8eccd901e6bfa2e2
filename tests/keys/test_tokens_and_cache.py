"""Pure parts: secrets, the cache's freshness rules, the CLI's parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gateway.keys.cache import Freshness, KeyCache
from gateway.keys.cli import parse_duration, parse_metadata, render_table
from gateway.keys.record import KeyRecord
from gateway.keys.schema import KeyCreate
from gateway.keys.tokens import (
    PREFIX,
    display_prefix,
    generate_secret,
    hash_secret,
    looks_like_key,
)


def test_secrets_are_prefixed_random_and_recognised() -> None:
    a, b = generate_secret(), generate_secret()
    assert a != b and a.startswith(PREFIX) and len(a) == len(PREFIX) + 43
    assert looks_like_key(a)
    assert not looks_like_key("sk-proj-" + a[8:]) and not looks_like_key(a[:-1])
    assert len(hash_secret(a)) == 32 and hash_secret(a) != hash_secret(b)
    assert display_prefix(a) == a[:12] and len(display_prefix(a)) <= 16


REC = KeyRecord(id="key_1", name="one")


def test_positive_entries_are_fresh_then_stale_then_gone() -> None:
    cache = KeyCache(ttl_s=10, grace_s=5, negative_ttl_s=2)
    digest = b"h" * 32
    assert cache.put(digest, REC, now=100, generation=cache.generation)
    assert cache.get(digest, 109.9).freshness is Freshness.FRESH
    stale = cache.get(digest, 112)
    assert stale.freshness is Freshness.STALE and stale.record is REC
    assert cache.get(digest, 115).freshness is Freshness.MISSING
    assert len(cache) == 0


def test_negative_entries_are_brief_and_never_stale() -> None:
    cache = KeyCache(ttl_s=10, grace_s=600, negative_ttl_s=2)
    cache.put(b"x" * 32, None, now=0, generation=0)
    hit = cache.get(b"x" * 32, 1.9)
    assert hit.freshness is Freshness.FRESH and hit.record is None
    # Past its TTL an unknown hash is just unknown: an outage must not turn it into a key.
    assert cache.get(b"x" * 32, 2.0).freshness is Freshness.MISSING


def test_negative_cache_is_bounded_oldest_first() -> None:
    cache = KeyCache(ttl_s=10, grace_s=0, negative_ttl_s=60, max_negative=3)
    cache.put(b"good" * 8, REC, 0, 0)
    for i in range(5):
        cache.put(bytes([i]) * 32, None, 0, 0)
    assert cache.get(bytes([0]) * 32, 1).freshness is Freshness.MISSING
    assert cache.get(bytes([4]) * 32, 1).freshness is Freshness.FRESH
    assert cache.get(b"good" * 8, 1).record is REC  # a flood never evicts real keys


def test_invalidation_drops_the_key_and_refuses_answers_read_before_it() -> None:
    cache = KeyCache(ttl_s=10, grace_s=0, negative_ttl_s=1)
    cache.put(b"a" * 32, REC, 0, cache.generation)
    read_at = cache.generation
    cache.invalidate("key_1")
    assert cache.get(b"a" * 32, 1).freshness is Freshness.MISSING
    # A lookup that started before the NOTIFY must not put the old row back.
    assert not cache.put(b"a" * 32, REC, 1, read_at)
    assert cache.get(b"a" * 32, 1).freshness is Freshness.MISSING
    cache.put(b"a" * 32, REC, 1, cache.generation)
    cache.clear()
    assert len(cache) == 0


def test_key_create_validates_like_the_api_documents() -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    spec = KeyCreate.model_validate(
        {"name": " ci ", "models": ["a", "b", "a"], "rpm": 5, "expires_at": future}
    )
    assert spec.name == "ci"
    assert spec.resolved_models(lambda m: {"a": "b"}.get(m, m)) == ["b"]
    naive = KeyCreate.model_validate({"name": "n", "expires_at": future.replace(tzinfo=None)})
    assert naive.expires_at is not None and naive.expires_at.tzinfo is not None
    for bad in (
        {"name": ""},
        {"name": "n", "rpm": 0},
        {"name": "n", "tpm": "5"},
        {"name": "n", "max_parallel": True},
        {"name": "n", "models": []},
        {"name": "n", "expires_at": datetime.now(UTC) - timedelta(seconds=1)},
        {"name": "n", "colour": "blue"},
    ):
        with pytest.raises(ValidationError):
            KeyCreate.model_validate(bad)


def test_cli_parsers() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("30", "0d", "-1d", "1y", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_metadata(["team=ml", "note=a=b"]) == {"team": "ml", "note": "a=b"}
    with pytest.raises(ValueError):
        parse_metadata(["novalue"])
    table = render_table(
        [{"a": "x", "b": None}, {"a": "longer", "b": [1, 2]}], [("A", "a"), ("B", "b")]
    )
    assert table.splitlines() == ["A       B", "x       -", "longer  1,2"]
