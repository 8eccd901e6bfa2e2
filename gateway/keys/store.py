"""The `api_keys` table: create, list, read, revoke, find by hash.

Every change sends `NOTIFY gateway_keys, '<key id>'` inside its own transaction: Postgres
delivers it only if, and right after, the change commits, so no replica can hear of a
revocation that did not happen, nor miss one that did (its listener clears its cache
whenever it reconnects). Rows leave this module detached and fully loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.db.engine import session_factory
from gateway.db.models import ApiKey, EndUserLimit
from gateway.keys.record import EndUserLimits, KeyRecord
from gateway.keys.schema import KeyCreate
from gateway.keys.tokens import display_prefix, generate_secret, hash_secret, new_key_id

CHANNEL = "gateway_keys"
# A payload that tells listeners to drop everything (for bulk changes made by hand).
ALL = "*"

Sessions = async_sessionmaker[AsyncSession]


def as_sessions(db: Sessions | AsyncEngine) -> Sessions:
    return session_factory(db) if isinstance(db, AsyncEngine) else db


def to_record(row: ApiKey, overrides: Sequence[EndUserLimit] = ()) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        models=frozenset(row.models) if row.models is not None else None,
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        daily_tokens=row.daily_tokens,
        monthly_tokens=row.monthly_tokens,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        metadata=dict(row.metadata_ or {}),
        owner=row.owner,
        trusted_front_end=bool(row.trusted_front_end),
        end_user_defaults=EndUserLimits(
            row.end_user_rpm,
            row.end_user_tpm,
            row.end_user_max_parallel,
            row.end_user_daily_tokens,
            row.end_user_monthly_tokens,
        ),
        end_user_overrides={o.end_user: limits_of(o) for o in overrides},
    )


def limits_of(row: EndUserLimit) -> EndUserLimits:
    return EndUserLimits(row.rpm, row.tpm, row.max_parallel, row.daily_tokens, row.monthly_tokens)


async def notify(session: AsyncSession, payload: str) -> None:
    await session.execute(select(func.pg_notify(CHANNEL, payload)))


class KeyStore:
    def __init__(self, db: Sessions | AsyncEngine) -> None:
        self._sessions = as_sessions(db)

    @property
    def sessions(self) -> Sessions:
        return self._sessions

    async def create(self, spec: KeyCreate, resolve: Callable[[str], str]) -> tuple[ApiKey, str]:
        """The new row and its secret; the secret exists nowhere else afterwards."""
        secret = generate_secret()
        key_id = new_key_id()
        row = ApiKey(
            id=key_id,
            name=spec.name,
            key_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            owner=key_id,  # documents are shared by setting another key's id here later
            models=spec.resolved_models(resolve),
            rpm=spec.rpm,
            tpm=spec.tpm,
            max_parallel=spec.max_parallel,
            daily_tokens=spec.daily_tokens,
            monthly_tokens=spec.monthly_tokens,
            expires_at=spec.expires_at,
            metadata_=dict(spec.metadata),
            trusted_front_end=spec.trusted_front_end,
            end_user_rpm=spec.end_user_rpm,
            end_user_tpm=spec.end_user_tpm,
            end_user_max_parallel=spec.end_user_max_parallel,
            end_user_daily_tokens=spec.end_user_daily_tokens,
            end_user_monthly_tokens=spec.end_user_monthly_tokens,
        )
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            await session.refresh(row)  # created_at comes from the database clock
            await notify(session, key_id)
            session.expunge(row)
        return row, secret

    async def list_keys(self) -> Sequence[ApiKey]:
        async with self._sessions() as session:
            result = await session.execute(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
            return result.scalars().all()

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._sessions() as session:
            return await session.get(ApiKey, key_id)

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke now, or keep the first revocation time (idempotent); None if unknown."""
        stmt = (
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
            .returning(ApiKey)
        )
        async with self._sessions() as session, session.begin():
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return None
            await notify(session, key_id)
            session.expunge(row)
        return row

    async def find_by_hash(self, digest: bytes) -> KeyRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(ApiKey).where(ApiKey.key_hash == digest))
            ).scalar_one_or_none()
            if row is None:
                return None
            overrides: Sequence[EndUserLimit] = ()
            if row.trusted_front_end:  # an admin-made list, small: loaded with the key
                overrides = (
                    (
                        await session.execute(
                            select(EndUserLimit).where(EndUserLimit.key_id == row.id)
                        )
                    )
                    .scalars()
                    .all()
                )
            return to_record(row, overrides)
