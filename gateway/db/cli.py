"""`gateway migrate`, and the database URL check shared by the operator commands that talk
to Postgres directly (so they work without a running gateway)."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from gateway.cli_settings import load_settings
from gateway.config import Settings
from gateway.db.url import sqlalchemy_url

NO_DATABASE = (
    "GATEWAY_DATABASE_URL is not set. Point it at the gateway's Postgres, e.g.\n"
    "  export GATEWAY_DATABASE_URL=postgresql://gateway:secret@localhost:5432/gateway"
)


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise click.ClickException(NO_DATABASE)
    try:
        sqlalchemy_url(settings.database_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return settings.database_url


def safe_url(url: str) -> str:
    """The URL for messages: the password masked."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=True)


def unreachable(url: str, exc: Exception) -> click.ClickException:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return click.ClickException(f"cannot use the database at {safe_url(url)}: {reason}")


@click.command()
def migrate() -> None:
    """Apply pending database migrations (GATEWAY_DATABASE_URL) and print the revision."""
    from gateway.db.migrate import current, upgrade

    url = database_url(load_settings())
    try:
        before = current(url)
        upgrade(url)
        after = current(url)
    except SQLAlchemyError as exc:
        raise unreachable(url, exc) from None
    if before == after:
        click.echo(f"database at {safe_url(url)} is up to date (revision {after})")
    else:
        click.echo(f"migrated {safe_url(url)} from {before or 'empty'} to revision {after}")
