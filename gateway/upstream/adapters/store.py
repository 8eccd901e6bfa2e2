"""The adapters loaded through the admin API, in Postgres: what every gateway process
(workers, replicas) keeps loaded, and what a restart loads again."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.upstream.adapters.spec import AdapterSpec


class AdapterStore:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def all(self) -> list[AdapterSpec]:
        async with self.db.connect() as conn:
            rows = await conn.execute(text("SELECT name, path, base_model FROM lora_adapters"))
            return [AdapterSpec(name=r.name, path=r.path, base_model=r.base_model) for r in rows]

    async def add(self, spec: AdapterSpec) -> bool:
        """False when the name is taken already (by another process's load)."""
        async with self.db.begin() as conn:
            added = await conn.execute(
                text(
                    "INSERT INTO lora_adapters (name, path, base_model) "
                    "VALUES (:name, :path, :base_model) ON CONFLICT (name) DO NOTHING"
                ),
                spec.model_dump(),
            )
        return added.rowcount == 1

    async def remove(self, name: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(text("DELETE FROM lora_adapters WHERE name = :name"), {"name": name})
