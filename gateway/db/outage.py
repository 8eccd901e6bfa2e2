"""Which database errors mean "Postgres is unreachable right now", mapped in one place.

Routes do not catch database errors themselves: whatever escapes them reaches the error
boundary (FastAPI's exception handlers and the pure-ASGI request context), which asks
`outage()` here. An outage is a retryable 503 with `retry-after`; any other database
error (a constraint, a bad statement) is a bug and stays a 500.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa

from gateway.errors import DatabaseUnavailable

# Errors that say the connection, not the statement, failed: refused, reset, server
# shutting down, pool exhausted; psycopg reports socket errors as OperationalError.
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    sa.OperationalError,
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,  # no pooled connection free within the pool's timeout
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
# The driver and SQLAlchemy errors the boundary hands here (the FastAPI handlers' keys).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa.SQLAlchemyError, psycopg.Error)

MESSAGE = "The gateway's database is unreachable right now; retry in a few seconds."
RETRY_AFTER_S = 1


def is_outage(exc: BaseException) -> bool:
    """True for an error (or one it was raised from) that means the database is down."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 4:  # a short chain: wrapped once or twice at most
        if isinstance(current, _OUTAGE_TYPES):
            return True
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__
        seen += 1
    return False


def outage(exc: BaseException) -> DatabaseUnavailable | None:
    """The 503 to answer for `exc`, or None if it is not a database outage."""
    if not is_outage(exc):
        return None
    return DatabaseUnavailable(MESSAGE, headers={"retry-after": str(RETRY_AFTER_S)})
