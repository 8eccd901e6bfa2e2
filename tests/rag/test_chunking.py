from __future__ import annotations

import itertools

import pytest

from gateway.errors import InvalidRequest
from gateway.rag.chunking import (
    AUTO,
    ChunkingStrategy,
    chunk_text,
    estimate_tokens,
    parse_strategy,
)


def test_auto_is_800_by_400_and_reported_as_static() -> None:
    assert parse_strategy(None) == AUTO == parse_strategy({"type": "auto"})
    assert AUTO.view() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }


@pytest.mark.parametrize(
    "static",
    [
        {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
        {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
        {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101},
        {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": -1},
        {"max_chunk_size_tokens": "200", "chunk_overlap_tokens": 0},
        {"max_chunk_size_tokens": 200},
    ],
)
def test_static_strategy_is_validated(static: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_strategy({"type": "static", "static": static})
    assert info.value.param and info.value.param.startswith("chunking_strategy.static")


def test_static_bounds_are_inclusive() -> None:
    low = parse_strategy(
        {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}}
    )
    assert (low.max_tokens, low.overlap_tokens) == (100, 50)
    with pytest.raises(InvalidRequest):
        parse_strategy({"type": "semantic"})


def test_capping_to_the_model_keeps_overlap_at_most_half() -> None:
    assert AUTO.capped(None) is AUTO and AUTO.capped(8192) is AUTO
    capped = AUTO.capped(256)
    assert (capped.max_tokens, capped.overlap_tokens) == (256, 128)


def words(n: int) -> str:
    return " ".join(f"w{i:04d}" for i in range(n))


def test_chunks_respect_the_size_and_overlap() -> None:
    strategy = ChunkingStrategy("static", 100, 40)
    chunks = chunk_text(words(1000), strategy)
    assert all(c.tokens <= 100 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        shared = set(a.text.split()) & set(b.text.split())
        assert 30 <= len(shared) <= 40  # about `overlap` tokens repeat
        assert b.start > a.start
    # Every word is in some chunk.
    assert set(words(1000).split()) == {w for c in chunks for w in c.text.split()}


def test_no_overlap_partitions_the_text() -> None:
    chunks = chunk_text(words(500), ChunkingStrategy("static", 100, 0))
    assert " ".join(c.text for c in chunks) == words(500)


def test_chunks_end_at_paragraphs_when_one_is_near() -> None:
    paragraph = "A sentence that goes on. " * 18  # ~90 estimated tokens
    text = "\n\n".join([paragraph.strip()] * 4)
    chunks = chunk_text(text, ChunkingStrategy("static", 100, 0))
    assert all(c.text.endswith("goes on.") for c in chunks)


def test_calibration_scales_the_estimate() -> None:
    text = words(400)
    plain = chunk_text(text, ChunkingStrategy("static", 100, 0))
    doubled = chunk_text(text, ChunkingStrategy("static", 100, 0), calibration=2.0)
    assert len(doubled) == pytest.approx(2 * len(plain), abs=1)


def test_long_unbroken_runs_are_cut() -> None:
    blob = "x" * 5000  # base64, minified code: no spaces at all
    chunks = chunk_text(blob, ChunkingStrategy("static", 100, 0))
    assert "".join(c.text for c in chunks) == blob
    assert all(c.tokens <= 100 for c in chunks)


def test_empty_and_whitespace() -> None:
    assert chunk_text("", AUTO) == []
    assert chunk_text("   \n ", AUTO) == []
    assert estimate_tokens("one two three") == 3.25  # "three": 5 chars / 4
