"""Usage per end user of one key (`GET /admin/usage?key_id=...&group_by=end_user`)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.usage.report_rows import counts

# Enough rows for any home lab's people; a flood of invented names stops here.
MAX_END_USER_ROWS = 1000

_BY_END_USER = """
    SELECT
        end_user,
        sum(requests) AS requests,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        sum(errors) AS errors,
        sum(rate_limited) AS rate_limited,
        sum(cancelled) AS cancelled,
        max(last_at) AS last_seen
    FROM ({facts}) AS f
    GROUP BY end_user
    ORDER BY coalesce(sum(prompt_tokens), 0) + coalesce(sum(completion_tokens), 0) DESC,
             end_user NULLS LAST
    LIMIT :limit
"""


async def by_end_user(
    conn: AsyncConnection, facts: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per person (None: requests that named nobody), most tokens first, from the
    rows of gateway.usage.facts."""
    sql = text(_BY_END_USER.format(facts=facts))
    rows = (await conn.execute(sql, {**params, "limit": MAX_END_USER_ROWS})).all()
    return [
        {
            "end_user": row.end_user,
            **counts(row),
            "last_seen": row.last_seen.astimezone(UTC).isoformat(),
        }
        for row in rows
    ]
