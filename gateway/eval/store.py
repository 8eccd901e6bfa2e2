"""Stored eval results in Postgres (`eval_runs`): insert one, list the newest, read one."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.models import EvalRun

_T = EvalRun.__table__
_LISTED = (_T.c.id, _T.c.model, _T.c.profile, _T.c.suite, _T.c.interrupted, _T.c.summary,
           _T.c.created_at)  # fmt: skip


def new_run_id() -> str:
    return "eval_" + secrets.token_hex(10)


def _view(row: RowMapping) -> dict[str, Any]:
    found = {"object": "eval.run", **dict(row)}
    found["created_at"] = int(row["created_at"].timestamp())
    return found


async def insert_run(db: AsyncEngine, result: dict[str, Any]) -> dict[str, Any]:
    values = {
        "id": new_run_id(),
        "model": result["model"],
        "profile": result.get("profile"),
        "suite": result.get("suite", ""),
        "interrupted": bool(result.get("interrupted")),
        "summary": result["summary"],
        "result": result,
    }
    async with db.begin() as conn:
        row = (
            (await conn.execute(insert(EvalRun).values(**values).returning(*_LISTED)))
            .mappings()
            .one()
        )
    return _view(row)


async def list_runs(db: AsyncEngine, model: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(*_LISTED).order_by(_T.c.created_at.desc(), _T.c.id).limit(limit)
    if model is not None:
        query = query.where(_T.c.model == model)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_view(r) for r in rows]


async def get_run(db: AsyncEngine, run_id: str) -> dict[str, Any] | None:
    query = select(*_LISTED, _T.c.result).where(_T.c.id == run_id)
    async with db.connect() as conn:
        row = (await conn.execute(query)).mappings().one_or_none()
    return None if row is None else _view(row)
