"""`gateway ingest` is a client of the gateway: importing it loads nothing of the server."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_LIBRARIES = ("fastapi", "starlette", "sqlalchemy", "psycopg", "pydantic_settings")


def test_the_client_imports_no_server_module() -> None:
    probe = "import json, sys, gateway.ingest_client.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    ours = [m for m in loaded if m == "gateway" or m.startswith("gateway.")]
    assert all(m == "gateway" or m.startswith("gateway.ingest_client") for m in ours), ours
    assert not [m for m in loaded if m.split(".")[0] in SERVER_LIBRARIES]
