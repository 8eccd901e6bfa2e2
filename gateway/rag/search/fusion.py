"""Reciprocal rank fusion of the vector and full-text rankings, and the query for the latter.

Pure. RRF (Cormack et al., 2009) sums 1/(k + rank) over the rankings a result appears in;
it needs no calibration between cosine distances and text ranks. The fused score is
divided by its maximum (first in every ranking), so it lies in 0..1: 1.0 means first in
both rankings, about 0.5 first in one and absent from the other.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 32

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Fused(Generic[T]):
    item: T
    score: float  # 0..1


def rrf(rankings: Sequence[Sequence[T]], k: int = RRF_K) -> list[Fused[T]]:
    """Items of all `rankings` (each best first, without duplicates), best fused first;
    ties keep the order of first appearance."""
    if not rankings:
        return []
    best = len(rankings) / (k + 1)
    totals: dict[T, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            totals[item] = totals.get(item, 0.0) + 1.0 / (k + rank)
    ordered = sorted(totals.items(), key=lambda pair: -pair[1])
    return [Fused(item, min(1.0, total / best)) for item, total in ordered]


def text_query(query: str) -> str | None:
    """The words of `query` for the full-text ranking (Postgres stems them and drops stop
    words), or None when it has none. A passage must contain every word, as with
    `plainto_tsquery`: the text ranking adds precision on exact terms (names, error codes,
    identifiers); the vector ranking carries meaning and recall. Only word characters
    pass, so no query syntax leaks in."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:_MAX_TERMS]
    return " ".join(words) or None
