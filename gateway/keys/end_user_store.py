"""The `end_user_limits` table: one person's limits under a trusted key.

Each change NOTIFYs the key's id in its own transaction, as key changes do
(gateway.keys.store): every replica drops the key from its cache and reloads it, with its
overrides, on the next request.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from gateway.db.models import EndUserLimit
from gateway.keys.record import EndUserLimits
from gateway.keys.store import Sessions, notify


class EndUserStore:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def put(self, key_id: str, end_user: str, limits: EndUserLimits) -> EndUserLimit:
        values = {
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "max_parallel": limits.max_parallel,
            "daily_tokens": limits.daily_tokens,
            "monthly_tokens": limits.monthly_tokens,
        }
        stmt = (
            insert(EndUserLimit)
            .values(key_id=key_id, end_user=end_user, **values)
            .on_conflict_do_update(
                index_elements=["key_id", "end_user"], set_={**values, "updated_at": func.now()}
            )
            .returning(EndUserLimit)
        )
        async with self._sessions() as session, session.begin():
            row = (await session.execute(stmt)).scalar_one()
            await notify(session, key_id)
            session.expunge(row)
        return row

    async def list_for(self, key_id: str) -> Sequence[EndUserLimit]:
        async with self._sessions() as session:
            stmt = (
                select(EndUserLimit)
                .where(EndUserLimit.key_id == key_id)
                .order_by(EndUserLimit.end_user)
            )
            return (await session.execute(stmt)).scalars().all()

    async def get(self, key_id: str, end_user: str) -> EndUserLimit | None:
        async with self._sessions() as session:
            return await session.get(EndUserLimit, (key_id, end_user))

    async def delete(self, key_id: str, end_user: str) -> bool:
        stmt = delete(EndUserLimit).where(
            EndUserLimit.key_id == key_id, EndUserLimit.end_user == end_user
        )
        async with self._sessions() as session, session.begin():
            gone = bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
            if gone:
                await notify(session, key_id)
        return gone
