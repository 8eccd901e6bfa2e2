from __future__ import annotations

import itertools
import random

import pytest

from gateway.errors import InvalidRequest
from gateway.rag.ingestion.chunking import (
    AUTO,
    ChunkingStrategy,
    estimate_tokens,
    parse_strategy,
)
from gateway.rag.ingestion.splitting import ChunkStream, TextChunk, chunk_text
from tests.rag.ingestion.chunking_oracle import oracle_chunks


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


# -- streaming: the same chunks however the text arrives, holding about one chunk --------

_SAMPLES = [
    "",
    "   \n ",
    "one",
    words(1000),
    ("A sentence that goes on. " * 18).strip() + "\n\n" + "Another one; here. " * 40,
    "x" * 5000 + " tail words " + "y" * 777,
    "short\nlines\nof\ntext.\n\n\nAnd paragraphs.\n" * 200,
    "  leading space, trailing space   " * 50 + "   ",
    "mixé unicodé — “quotes” and emoji 🙂 " * 300,
    "\n\n".join("para " + "w" * (i % 700) + " end." for i in range(120)),
]
_STRATEGIES = [
    ChunkingStrategy("static", 100, 0),
    ChunkingStrategy("static", 100, 50),
    ChunkingStrategy("static", 250, 60),
    AUTO,
]


def _streamed(
    text: str, strategy: ChunkingStrategy, cuts: list[int], calibration: float
) -> list[tuple[str, int, int, int]]:
    stream = ChunkStream(strategy, calibration)
    out: list[TextChunk] = []
    previous = 0
    for cut in [*sorted(cuts), len(text)]:
        out += stream.feed(text[previous:cut])
        previous = cut
    return [(c.text, c.start, c.end, c.tokens) for c in out + stream.finish()]


@pytest.mark.parametrize("calibration", [1.0, 0.7, 2.5])
@pytest.mark.parametrize(
    "strategy", _STRATEGIES, ids=lambda s: f"{s.max_tokens}/{s.overlap_tokens}"
)
def test_streaming_gives_the_chunks_the_whole_text_gives(
    strategy: ChunkingStrategy, calibration: float
) -> None:
    rng = random.Random(f"{strategy}{calibration}")
    for text in _SAMPLES:
        expected = oracle_chunks(text, strategy, calibration)
        whole = [
            (c.text, c.start, c.end, c.tokens) for c in chunk_text(text, strategy, calibration)
        ]
        assert whole == expected
        for pieces in (1, 3, 17, 200):
            cuts = [rng.randrange(len(text) + 1) for _ in range(pieces)] if text else []
            assert _streamed(text, strategy, cuts, calibration) == expected
        # One character at a time: every word and run boundary falls between two feeds.
        if len(text) < 6000:
            assert _streamed(text, strategy, list(range(len(text))), calibration) == expected


def test_random_texts_agree_with_the_reference() -> None:
    rng = random.Random(11)
    alphabet = ["a", "b", "é", " ", "  ", "\n", "\n\n", ".", ";", "\t", "xxxxxxxxxxxxxxxx"]
    for _ in range(60):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 4000)))
        strategy = ChunkingStrategy("static", rng.choice([100, 150, 400]), rng.choice([0, 20, 50]))
        cuts = [rng.randrange(len(text) + 1) for _ in range(rng.randrange(1, 40))]
        assert _streamed(text, strategy, cuts, 1.0) == oracle_chunks(text, strategy, 1.0)


def test_the_stream_holds_about_one_chunk_of_text() -> None:
    strategy = ChunkingStrategy("static", 200, 100)  # ~800 characters a chunk
    stream = ChunkStream(strategy)
    held = 0
    count = 0
    block = words(5000) + " "
    for _ in range(40):  # ~1.2 MB through the stream
        count += len(stream.feed(block))
        held = max(held, stream.buffered)
    count += len(stream.finish())
    assert count > 2000
    assert held < 2 * len(block)  # the block being read and about one chunk, not the text


def test_a_word_longer_than_the_text_so_far_is_cut_as_it_arrives() -> None:
    strategy = ChunkingStrategy("static", 100, 0)  # runs of 400 characters
    stream = ChunkStream(strategy)
    emitted = []
    for _ in range(1000):  # one 1 MB "word", 1 kB at a time
        emitted += stream.feed("z" * 1000)
        assert stream.buffered < 4000
    emitted += stream.finish()
    assert "".join(c.text for c in emitted) == "z" * 1_000_000
