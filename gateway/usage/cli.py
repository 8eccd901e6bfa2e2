"""`gateway usage`: the same report as `GET /admin/usage`, read straight from the database;
`gateway usage retention`: create the coming months' event partitions and drop old ones."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import click
import orjson

from gateway.cli_settings import load_settings
from gateway.db.cli import database_url
from gateway.db.engine import create_engine
from gateway.usage.partitions import Plan, maintain
from gateway.usage.report import BadBound, UsageQuery, usage_report

_COLUMNS = (
    ("requests", "REQUESTS"),
    ("prompt_tokens", "PROMPT"),
    ("completion_tokens", "COMPLETION"),
    ("total_tokens", "TOTAL"),
    ("errors", "ERRORS"),
    ("rate_limited", "429S"),
    ("cancelled", "CANCELLED"),
)


async def _fetch(database_url: str, query: UsageQuery) -> dict[str, Any]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await usage_report(conn, query)
    finally:
        await engine.dispose()


def _table(label: str, rows: list[dict[str, Any]], name: str) -> list[str]:
    header = [label, *(title for _, title in _COLUMNS)]
    body = [[str(r[name]), *(f"{r[field]:,}" for field, _ in _COLUMNS)] for r in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, *body]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def render(report: dict[str, Any]) -> str:
    scope = f"key {report['key_id']}" if report["key_id"] else "all keys"
    if report["model"]:
        scope += f", model {report['model']}"
    lines = [f"Usage for {scope}, {report['since']} to {report['until']}", ""]
    lines += _table("", [{**report, "label": "total"}], "label")
    if report["by_model"]:
        lines += ["", *_table("MODEL", report["by_model"], "model")]
    if report["by_day"]:
        lines += ["", *_table("DAY (UTC)", report["by_day"], "date")]
    people = report.get("by_end_user")
    if people:
        named = [{**p, "end_user": p["end_user"] or "(nobody named)"} for p in people]
        lines += ["", *_table("END USER", named, "end_user")]
    return "\n".join(lines)


@click.group(invoke_without_command=True)
@click.option("--key-id", help="Only this key's requests.")
@click.option("--model", help="Only this served model's requests.")
@click.option("--since", help="Start, ISO date or datetime (UTC if naive). Default: 30 days ago.")
@click.option("--until", help="End, ISO datetime or date (that day included). Default: now.")
@click.option(
    "--by-end-user",
    is_flag=True,
    help="Also per end user (the people behind a trusted front end's --key-id).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the JSON that GET /admin/usage returns."
)
@click.pass_context
def usage(
    ctx: click.Context,
    key_id: str | None,
    model: str | None,
    since: str | None,
    until: str | None,
    by_end_user: bool,
    as_json: bool,
) -> None:
    """Show metered requests and tokens, in total, per model and per day."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    url = database_url(settings)
    try:
        query = UsageQuery.parse(
            key_id=key_id,
            model=model,
            since=since,
            until=until,
            group_by="end_user" if by_end_user else None,
        )
    except BadBound as exc:
        flag = "--by-end-user" if exc.param == "group_by" else f"--{exc.param.replace('_', '-')}"
        raise click.BadParameter(str(exc), param_hint=flag) from None
    try:
        report = asyncio.run(_fetch(url, query))
    except Exception as exc:  # connection refused, unknown database, not migrated, ...
        raise click.ClickException(f"could not read usage from the database: {exc}") from None
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(report))


async def _maintain(database_url: str, keep: timedelta | None, dry_run: bool) -> Plan:
    engine = create_engine(database_url, pool_size=1)
    try:
        return await maintain(engine, retention=keep, dry_run=dry_run)
    finally:
        await engine.dispose()


@usage.command()
@click.option(
    "--keep-days",
    type=click.IntRange(min=1),
    help="Drop the months of events that ended more than this many days ago. "
    "Default: GATEWAY_USAGE_RETENTION_DAYS (unset: drop nothing).",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be created and dropped; change nothing."
)
def retention(keep_days: int | None, dry_run: bool) -> None:
    """Create the coming months' usage partitions and drop the expired ones (whole months:
    DROP TABLE, never DELETE). The gateway does the same every few hours by itself."""
    settings = load_settings()
    url = database_url(settings)
    days = keep_days if keep_days is not None else settings.usage_retention_days
    keep = timedelta(days=days) if days is not None else None
    try:
        done = asyncio.run(_maintain(url, keep, dry_run))
    except Exception as exc:  # connection refused, unknown database, not migrated, ...
        raise click.ClickException(f"could not maintain usage partitions: {exc}") from None
    verb = ("would create", "would drop") if dry_run else ("created", "dropped")
    for label, months in zip(verb, (done.create, done.drop), strict=True):
        names = ", ".join(m.isoformat()[:7] for m in months) or "nothing"
        click.echo(f"{label}: {names}")
    if keep is None:
        click.echo("kept every month (no --keep-days, GATEWAY_USAGE_RETENTION_DAYS unset)")
