"""`gateway keys create|list|revoke`: straight to Postgres (GATEWAY_DATABASE_URL), so they
work with no gateway running. Flags mirror `POST /admin/keys`; `--json` is for scripts.

Other replicas hear of every change through the same NOTIFY the admin API sends.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli_settings import load_settings
from gateway.config import Settings
from gateway.db.cli import database_url, unreachable
from gateway.db.engine import create_engine, session_factory
from gateway.keys.schema import KeyCreate, key_view
from gateway.keys.store import KeyStore

T = TypeVar("T")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d`, `2w`."""
    match = _DURATION.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 15m, 90s or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--metadata {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Plain aligned text: (header, field) columns; None shows as `-`."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return str(value)

    table = [[h for h, _ in columns]] + [[cell(r.get(f)) for _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    )


_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("PREFIX", "prefix"),
    ("STATUS", "status"),
    ("MODELS", "models"),
    ("RPM", "rpm"),
    ("TPM", "tpm"),
    ("PARALLEL", "max_parallel"),
    ("DAILY", "daily_tokens"),
    ("MONTHLY", "monthly_tokens"),
    ("END USERS", "end_users"),
    ("EXPIRES (UTC)", "expires_at"),
    ("CREATED", "created_at"),
)


def _short_times(view: dict[str, Any]) -> dict[str, Any]:
    # Minutes (UTC) are enough for people; --json keeps full ISO-8601.
    out = dict(view)
    for field in ("expires_at", "created_at"):
        if out.get(field):
            out[field] = datetime.fromisoformat(out[field]).strftime("%Y-%m-%d %H:%M")
    out["prefix"] = f"{view['prefix']}…"
    out["models"] = view["models"] if view["models"] is not None else "all"
    # A trusted front end: its people's default rpm, else just that it names them.
    if view.get("trusted_front_end"):
        rpm = view.get("end_user_rpm")
        out["end_users"] = f"{rpm} rpm each" if rpm else "yes"
    return out


def _with_store(action: Callable[[KeyStore], Awaitable[T]], settings: Settings | None = None) -> T:
    url = database_url(settings or load_settings())

    async def run() -> T:
        engine = create_engine(url, pool_size=1)
        try:
            return await action(KeyStore(session_factory(engine)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None


def _flag(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else ""
    special = {"models": "--model", "expires_at": "--expires-at/--expires-in"}
    return special.get(field, "--" + field.replace("_", "-"))


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (needs GATEWAY_DATABASE_URL)."""


@keys.command()
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option("--model", "models", multiple=True, help="Allowed model (repeat); default: all.")
@click.option("--rpm", type=int, help="Requests per minute.")
@click.option("--tpm", type=int, help="Tokens per minute.")
@click.option("--max-parallel", type=int, help="Requests in flight at once.")
@click.option("--daily-tokens", type=int, help="Tokens per UTC day.")
@click.option("--monthly-tokens", type=int, help="Tokens per UTC month.")
@click.option("--expires-in", help="Lifetime, e.g. 30d, 12h, 2w.")
@click.option("--expires-at", help="Expiry as ISO-8601, e.g. 2026-12-31T00:00:00Z.")
@click.option("--metadata", multiple=True, help="KEY=VALUE to store with the key (repeat).")
@click.option(
    "--trusted-front-end",
    is_flag=True,
    help="The key of an app serving many people (Open WebUI): read who each request is for.",
)
@click.option("--end-user-rpm", type=int, help="Requests per minute for each end user.")
@click.option("--end-user-tpm", type=int, help="Tokens per minute for each end user.")
@click.option("--end-user-max-parallel", type=int, help="Requests in flight per end user.")
@click.option("--end-user-daily-tokens", type=int, help="Tokens per UTC day per end user.")
@click.option("--end-user-monthly-tokens", type=int, help="Tokens per UTC month per end user.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def create(
    name: str,
    models: tuple[str, ...],
    rpm: int | None,
    tpm: int | None,
    max_parallel: int | None,
    daily_tokens: int | None,
    monthly_tokens: int | None,
    expires_in: str | None,
    expires_at: str | None,
    metadata: tuple[str, ...],
    trusted_front_end: bool,
    end_user_rpm: int | None,
    end_user_tpm: int | None,
    end_user_max_parallel: int | None,
    end_user_daily_tokens: int | None,
    end_user_monthly_tokens: int | None,
    as_json: bool,
) -> None:
    """Create a key and print its secret, once."""
    if expires_in and expires_at:
        raise click.UsageError("give --expires-in or --expires-at, not both")
    try:
        expiry: Any = expires_at
        if expires_in:
            expiry = datetime.now(UTC) + parse_duration(expires_in)
        spec = KeyCreate(
            name=name,
            models=list(models) or None,
            rpm=rpm,
            tpm=tpm,
            max_parallel=max_parallel,
            daily_tokens=daily_tokens,
            monthly_tokens=monthly_tokens,
            expires_at=expiry,
            metadata=parse_metadata(metadata),
            trusted_front_end=trusted_front_end,
            end_user_rpm=end_user_rpm,
            end_user_tpm=end_user_tpm,
            end_user_max_parallel=end_user_max_parallel,
            end_user_daily_tokens=end_user_daily_tokens,
            end_user_monthly_tokens=end_user_monthly_tokens,
        )
    except ValidationError as exc:
        # A rule across fields (end-user limits need trust) has no one flag to name.
        lines = [
            f"  {_flag(e['loc'])}: {e['msg']}" if e["loc"] else f"  {e['msg']}"
            for e in exc.errors()
        ]
        raise click.UsageError("invalid key:\n" + "\n".join(lines)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    settings = load_settings()
    aliases = settings.model_aliases
    row, secret = _with_store(
        lambda store: store.create(spec, lambda m: aliases.get(m, m)), settings
    )
    view = key_view(row, datetime.now(UTC))
    if as_json:
        _echo_json({**view, "key": secret})
        return
    click.echo(f"Created key {row.id} ({row.name}).")
    click.echo(secret)
    click.echo("Save this key now: it will not be shown again.", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_(as_json: bool) -> None:
    """List keys (never their secrets)."""
    rows = _with_store(lambda store: store.list_keys())
    now = datetime.now(UTC)
    views = [key_view(row, now) for row in rows]
    if as_json:
        _echo_json(views)
    elif not views:
        click.echo("No keys yet: create one with `gateway keys create --name NAME`.")
    else:
        click.echo(render_table([_short_times(v) for v in views], _COLUMNS))


@keys.command()
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def revoke(key_id: str, as_json: bool) -> None:
    """Revoke a key by id; every gateway replica refuses it within a second."""
    row = _with_store(lambda store: store.revoke(key_id))
    if row is None:
        raise click.ClickException(f"no key with id {key_id!r} (see `gateway keys list`)")
    if as_json:
        _echo_json(key_view(row, datetime.now(UTC)))
        return
    revoked = row.revoked_at.isoformat() if row.revoked_at else "now"
    click.echo(f"Revoked {row.id} ({row.name}) at {revoked}.")
