from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.rag.routes.paging import page_request, seq_window


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
