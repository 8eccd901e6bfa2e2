"""Log timestamps: the per-second part is cached, the milliseconds never are."""

from __future__ import annotations

import time

from gateway.logs import _timestamp


def test_timestamps_within_and_across_seconds() -> None:
    assert _timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert _timestamp(0.5) == "1970-01-01T00:00:00.500Z"  # same second: cached part
    assert _timestamp(1.999) == "1970-01-01T00:00:01.999Z"  # the next one
    assert _timestamp(0.25) == "1970-01-01T00:00:00.250Z"  # and back again
    now = time.time()
    assert _timestamp(now).startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)))
