"""`POST /admin/evals` (what `gateway eval` sends with the admin key), `GET /admin/evals`
(newest first, optionally one model's) and `GET /admin/evals/{id}` (with every case's raw
output). Admin only: results name models and profiles and quote model output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import NeedsDatabase, NotFound
from gateway.eval.store import get_run, insert_run, list_runs
from gateway.http.app_state import attribute
from gateway.keys.require_admin import require_admin

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

_Name = Annotated[str, Field(min_length=1, max_length=512)]
_Short = Annotated[str, Field(max_length=200)]
_Text = Annotated[str, Field(max_length=20_000)]


class _Rate(BaseModel):
    passed: int = Field(ge=0)
    total: int = Field(ge=0)


class _Speed(BaseModel):
    concurrency: int = Field(ge=1)
    requests: int = Field(ge=0)
    ttft_ms: float
    tokens_per_s: float
    total_tokens_per_s: float


class _Finding(BaseModel):
    kind: _Short
    cases: list[_Short] = Field(max_length=1000)
    example: _Text
    message: _Text


class _Case(BaseModel):
    case_id: _Short
    category: _Short
    passed: bool
    failures: list[_Text] = Field(default_factory=list, max_length=50)
    output: _Text = ""
    tool_calls: list[list[_Text]] = Field(default_factory=list, max_length=32)
    error: _Text | None = None
    seconds: float = 0.0
    refused: bool = False


class EvalResult(BaseModel):
    """One model's result, as `gateway eval --json` prints it."""

    model_config = ConfigDict(extra="forbid")

    model: _Name
    profile: _Short | None = None
    suite: _Text = ""
    interrupted: bool = False
    summary: dict[_Short, float] = Field(max_length=500)
    rates: dict[_Short, _Rate] = Field(default_factory=dict, max_length=500)
    not_measured: list[_Short] = Field(default_factory=list, max_length=500)
    speed: list[_Speed] = Field(default_factory=list, max_length=16)
    findings: list[_Finding] = Field(default_factory=list, max_length=16)
    cases: list[_Case] = Field(default_factory=list, max_length=20_000)


@dataclass(frozen=True, slots=True)
class EvalStore:
    """What these routes read from, put on `app.state.eval_store` by the lifespan."""

    db: AsyncEngine


def eval_store(request: Request) -> EvalStore:
    found = attribute(request.app.state, "eval_store", EvalStore)
    if found is None:
        raise NeedsDatabase(
            "Eval results are stored only when the gateway has a database: "
            "set GATEWAY_DATABASE_URL."
        )
    return found


Store = Annotated[EvalStore, Depends(eval_store)]


@router.post("/evals", status_code=201)
async def create_eval(result: EvalResult, store: Store) -> dict[str, Any]:
    return await insert_run(store.db, result.model_dump())


@router.get("/evals")
async def list_evals(
    store: Store,
    model: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return {"object": "list", "data": await list_runs(store.db, model, limit)}


@router.get("/evals/{run_id}")
async def get_eval(run_id: str, store: Store) -> dict[str, Any]:
    found = await get_run(store.db, run_id) if len(run_id) <= 40 else None
    if found is None:
        raise NotFound(f"No eval run with id {run_id!r}.", param="run_id")
    return found
