"""Embedded Postgres servers (pgserver) for tests: the session's, and the ones a test
starts to take down on purpose (an outage)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


def new_server(prefix: str = "gateway-pg-") -> PostgresServer:
    """A fresh server, deleted on cleanup. Not under pytest's 0700 temp folder: run as root,
    pgserver drops to its own user, which must be able to reach the data directory."""
    from pgserver.postgres_server import get_server  # imported when a test needs one

    return get_server(tempfile.mkdtemp(prefix=prefix), cleanup_mode="delete")


def stop_server(server: PostgresServer) -> None:
    """Stop `server` at once (fast shutdown): the database is gone, as in an outage."""
    from pgserver import _commands

    # pgserver makes its command wrappers by name at import time: typed here by hand.
    pg_ctl: Callable[..., str] = vars(_commands)["pg_ctl"]
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
