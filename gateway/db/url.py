"""Database URLs as users write them, in the form SQLAlchemy's psycopg 3 driver wants."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

_ACCEPTED = ("postgresql", "postgres", "postgresql+psycopg")


def sqlalchemy_url(url: str) -> URL:
    """`postgresql://`, `postgres://` and `postgresql+psycopg://` (unix-socket URLs like
    `postgresql://postgres:@/postgres?host=/run/pg` included) all become psycopg 3 URLs."""
    parsed = make_url(url)
    if parsed.drivername not in _ACCEPTED:
        raise ValueError(
            f"GATEWAY_DATABASE_URL must be a postgresql:// URL, not {parsed.drivername}://"
        )
    return parsed.set(drivername="postgresql+psycopg")


def libpq_url(url: str | URL) -> str:
    """The same URL for plain psycopg (LISTEN/NOTIFY, search), password included."""
    parsed = sqlalchemy_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
