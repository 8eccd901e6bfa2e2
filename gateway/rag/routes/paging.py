"""Cursor paging as OpenAI lists do it: `after`/`before` are object ids, `order` by creation.

Pure: the cursor ids are turned into creation sequence numbers by the caller; this builds
the condition and order and says whether the page must be reversed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    order: str  # "asc" | "desc"
    after: str | None = None
    before: str | None = None


def page_request(
    query: Mapping[str, str], *, default_limit: int = 20, max_limit: int = 100, order: str = "desc"
) -> PageRequest:
    raw_limit = query.get("limit")
    try:
        limit = default_limit if raw_limit in (None, "") else int(raw_limit)
    except ValueError:
        raise InvalidRequest("limit must be an integer.", param="limit") from None
    if not 1 <= limit <= max_limit:
        raise InvalidRequest(f"limit must be between 1 and {max_limit}.", param="limit")
    chosen = query.get("order") or order
    if chosen not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    return PageRequest(limit, chosen, query.get("after") or None, query.get("before") or None)


def seq_window(
    order: str, after_seq: int | None, before_seq: int | None, column: str = "seq"
) -> tuple[str, str, bool]:
    """(condition, ORDER BY, reverse): rows after/before the cursors in `order`. A `before`
    page is read nearest-first (the other way round) and reversed afterwards."""
    forward = order == "asc"
    conditions: list[str] = []
    if after_seq is not None:
        conditions.append(f"{column} {'>' if forward else '<'} {int(after_seq)}")
    if before_seq is not None:
        conditions.append(f"{column} {'<' if forward else '>'} {int(before_seq)}")
    reverse = before_seq is not None and after_seq is None
    ascending = forward != reverse
    where = " AND ".join(conditions) or "TRUE"
    return where, f"{column} {'ASC' if ascending else 'DESC'}", reverse
