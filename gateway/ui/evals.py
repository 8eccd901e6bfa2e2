"""Evals: stored `gateway eval` results from `GET /admin/evals`, the newest run of each
model and profile side by side, and one run's failed cases with the model's raw output."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.eval.render import cells, column_title, row_order
from gateway.ui.client import ApiError
from gateway.ui.render import page
from gateway.ui.web import SignedIn

router = APIRouter()

SIDE_BY_SIDE = 6  # columns that still read on a laptop
LISTED = 100


def newest_per_column(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest run of each (model, profile), newest first; runs come newest first."""
    seen: set[tuple[str, str | None]] = set()
    chosen = []
    for run in runs:
        column = (run["model"], run.get("profile"))
        if column not in seen:
            seen.add(column)
            chosen.append(run)
    return chosen[:SIDE_BY_SIDE]


def grid(results: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    columns = [cells(r) for r in results]
    return [(label, [c.get(label, "—") for c in columns]) for label in row_order(results)]


@router.get("/ui/evals", response_class=HTMLResponse)
async def evals_page(console: SignedIn) -> Response:
    runs: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    error = None
    try:
        runs = (await console.api.get("/admin/evals", limit=str(LISTED)))["data"]
        for run in newest_per_column(runs):
            results.append({**(await console.api.get(f"/admin/evals/{run['id']}"))["result"]})
    except ApiError as exc:
        error = exc.message
    return page(
        console,
        "evals.html",
        nav="evals",
        runs=runs,
        titles=[column_title(r) for r in results],
        rows=grid(results) if results else [],
        error=error,
    )


@router.get("/ui/evals/{run_id}", response_class=HTMLResponse)
async def eval_run_page(run_id: str, console: SignedIn) -> Response:
    try:
        run = await console.api.get(f"/admin/evals/{run_id[:40]}")
    except ApiError as exc:
        status = 404 if exc.status == 404 else 200
        return page(console, "eval_run.html", status, nav="evals", run=None, error=exc.message)
    result = run["result"]
    failed = [c for c in result.get("cases", []) if not c["passed"]]
    return page(
        console,
        "eval_run.html",
        nav="evals",
        run=run,
        rows=grid([result]),
        findings=result.get("findings", []),
        failed=failed,
        total=len(result.get("cases", [])),
        error=None,
    )
