from __future__ import annotations

import pytest

from gateway.rag.search.fusion import rrf, text_query


def test_rrf_rewards_agreement_and_scores_in_0_1() -> None:
    fused = rrf([["a", "b", "c"], ["c", "d"]])
    assert [f.item for f in fused][:2] == ["c", "a"]
    assert all(0 < f.score <= 1 for f in fused)
    assert rrf([["x"], ["x"]])[0].score == 1.0
    assert rrf([["x"], []])[0].score == pytest.approx(0.5)
    assert rrf([]) == []


def test_rrf_ties_keep_first_appearance() -> None:
    assert [f.item for f in rrf([["a"], ["b"]])] == ["a", "b"]


def test_text_query_keeps_only_words() -> None:
    assert text_query("What's the Refund policy? refund!") == "what s the refund policy"
    assert text_query("a & b | !c:*") == "a b c"
    assert text_query("?!") is None
    long = text_query(" ".join(f"w{i}" for i in range(100)))
    assert long is not None and len(long.split()) == 32
