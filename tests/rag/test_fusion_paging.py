from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.rag.fusion import rrf, text_query
from gateway.rag.paging import page_request, seq_window


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
    assert len(text_query(" ".join(f"w{i}" for i in range(100))).split()) == 32


def test_page_request_validation() -> None:
    page = page_request({"limit": "5", "order": "asc", "after": "vs_1"})
    assert (page.limit, page.order, page.after, page.before) == (5, "asc", "vs_1", None)
    assert page_request({}).limit == 20 and page_request({}).order == "desc"
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"order": "up"}):
        with pytest.raises(InvalidRequest):
            page_request(bad)


def test_seq_window() -> None:
    assert seq_window("desc", None, None) == ("TRUE", "seq DESC", False)
    assert seq_window("desc", 10, None) == ("seq < 10", "seq DESC", False)
    assert seq_window("asc", 10, None) == ("seq > 10", "seq ASC", False)
    # `before` reads nearest first, then reverses.
    assert seq_window("desc", None, 10) == ("seq > 10", "seq ASC", True)
    assert seq_window("asc", None, 10) == ("seq < 10", "seq DESC", True)
    assert seq_window("asc", 2, 9) == ("seq > 2 AND seq < 9", "seq ASC", False)
