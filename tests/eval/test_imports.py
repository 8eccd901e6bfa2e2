"""`gateway eval` is a client of the gateway: the command loads nothing of the server (only
store.py and routes.py, which the server wires, touch the database and the admin routes)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_LIBRARIES = ("fastapi", "starlette", "sqlalchemy", "psycopg", "pydantic_settings")


def test_the_command_imports_no_server_module() -> None:
    probe = "import json, sys, gateway.eval.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    ours = [m for m in loaded if m == "gateway" or m.startswith("gateway.")]
    assert all(m == "gateway" or m.startswith("gateway.eval") for m in ours), ours
    assert "gateway.eval.store" not in ours and "gateway.eval.routes" not in ours
    assert not [m for m in loaded if m.split(".")[0] in SERVER_LIBRARIES]
