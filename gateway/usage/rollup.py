"""The rollup of usage events (`usage_rollup`), added to by each writer batch.

One row per UTC hour and one per UTC day for each (key, model, end user), with the sums
every report needs: requests, tokens, errors, 429s, cancellations, the time-to-first-token
sum and count (a mean is exact from those; a median is not, so the series reads raw events
where it shows one) and the last event's time. Reports read days for a window's whole
days and hours around them (gateway.usage.facts): a month is ~30 rows per group, not ~720.
The writer adds a batch's rows in the same transaction as its events, so the rollup and
the raw events never disagree. Pure, apart from the SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

# The positions in gateway.usage.store.copy_row's tuples that the rollup reads.
_KEY, _MODEL, _STATUS, _PROMPT, _COMPLETION, _TTFT, _CANCELLED, _AT, _END_USER = (
    1, 2, 5, 6, 7, 9, 11, 12, 13,
)  # fmt: skip

# (period "hour" | "day", its UTC start, key, model, end user)
Group = tuple[str, datetime, str | None, str, str | None]
# requests, prompt, completion, errors, rate_limited, cancelled, ttft_sum, ttft_count, last_at
Sums = list[Any]

COLUMNS = (
    "period, start, key_id, model, end_user, requests, prompt_tokens, completion_tokens, "
    "errors, rate_limited, cancelled, ttft_ms_sum, ttft_count, last_at"
)
# ORDER BY fixes the order in which row locks are taken: replicas flushing the same hour
# and key cannot deadlock. The unique index treats NULLs as equal (NULLS NOT DISTINCT),
# so requests with no key or no end user fold into one row too.
UPSERT = f"""
INSERT INTO usage_rollup ({COLUMNS})
SELECT * FROM unnest(%s::varchar[], %s::timestamptz[], %s::varchar[], %s::text[], %s::text[],
    %s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::float8[],
    %s::int8[], %s::timestamptz[])
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (period, start, key_id, model, end_user) DO UPDATE
SET requests = usage_rollup.requests + excluded.requests,
    prompt_tokens = usage_rollup.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = usage_rollup.completion_tokens + excluded.completion_tokens,
    errors = usage_rollup.errors + excluded.errors,
    rate_limited = usage_rollup.rate_limited + excluded.rate_limited,
    cancelled = usage_rollup.cancelled + excluded.cancelled,
    ttft_ms_sum = usage_rollup.ttft_ms_sum + excluded.ttft_ms_sum,
    ttft_count = usage_rollup.ttft_count + excluded.ttft_count,
    last_at = greatest(usage_rollup.last_at, excluded.last_at)
"""  # noqa: S608 (constants)

# The same rows from raw events: the migration's backfill, and the tests' reference.
FROM_EVENTS = f"""
WITH h AS (
    SELECT 'hour'::varchar AS period, date_trunc('hour', created_at, 'UTC') AS start,
        key_id, model, end_user,
        count(*) AS requests, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        count(*) FILTER (WHERE status >= 400) AS errors,
        count(*) FILTER (WHERE status = 429) AS rate_limited,
        count(*) FILTER (WHERE cancelled) AS cancelled,
        coalesce(sum(ttft_ms), 0) AS ttft_ms_sum, count(ttft_ms) AS ttft_count,
        max(created_at) AS last_at
    FROM usage_events
    GROUP BY 2, 3, 4, 5
)
SELECT {COLUMNS} FROM h
UNION ALL
SELECT 'day', date_trunc('day', start, 'UTC'), key_id, model, end_user, sum(requests),
    sum(prompt_tokens), sum(completion_tokens), sum(errors), sum(rate_limited),
    sum(cancelled), sum(ttft_ms_sum), sum(ttft_count), max(last_at)
FROM h
GROUP BY 2, 3, 4, 5
"""  # noqa: S608 (constants)


# The whole rollup again from the events, for events that came some other way than the
# writer (an import, a test's fixture); the migration's backfill is its INSERT. It reads
# every event: minutes on tens of millions.
REBUILD = (
    "DELETE FROM usage_rollup",
    f"INSERT INTO usage_rollup ({COLUMNS}) {FROM_EVENTS}",
)


def hour_of(moment: datetime) -> datetime:
    # Events are stamped in UTC; a naive stamp is taken as UTC, as Postgres' COPY does here.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rolled_up(rows: Iterable[Sequence[Any]]) -> dict[Group, Sums]:
    """Sum rows shaped like `copy_row`'s (already cleaned, so the rollup's keys are the
    values the events table holds) per hour and per day, by key, model and end user."""
    hours: dict[Group, Sums] = {}
    for row in rows:
        at: datetime = row[_AT]
        group = ("hour", hour_of(at), row[_KEY], row[_MODEL], row[_END_USER])
        sums = hours.get(group)
        if sums is None:
            sums = hours[group] = [0, 0, 0, 0, 0, 0, 0.0, 0, at]
        status, ttft = row[_STATUS], row[_TTFT]
        sums[0] += 1
        sums[1] += row[_PROMPT]
        sums[2] += row[_COMPLETION]
        sums[3] += status >= 400
        sums[4] += status == 429
        sums[5] += bool(row[_CANCELLED])
        if ttft is not None:
            sums[6] += ttft
            sums[7] += 1
        if at > sums[8]:
            sums[8] = at
    # Days from the hours: a batch holds far fewer groups than events.
    groups = dict(hours)
    for (_, hour, key, model, end_user), sums in hours.items():
        day = ("day", hour.replace(hour=0), key, model, end_user)
        total = groups.get(day)
        if total is None:
            groups[day] = list(sums)
            continue
        for i in range(8):
            total[i] += sums[i]
        total[8] = max(total[8], sums[8])
    return groups


def upsert_params(groups: dict[Group, Sums]) -> list[list[Any]]:
    """One array per column, the shape UPSERT's unnest() takes."""
    rows = [(*group, *sums) for group, sums in groups.items()]
    return [list(column) for column in zip(*rows, strict=True)]
