"""Choosing an engine: the healthy one with the fewest requests in flight."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from gateway.upstream.registry import Upstream


def choose(candidates: Sequence[Upstream], tried: Collection[Upstream] = ()) -> Upstream | None:
    best: Upstream | None = None
    for upstream in candidates:
        if not upstream.healthy or upstream in tried:
            continue
        if best is None or upstream.in_flight < best.in_flight:
            best = upstream
    return best
