"""The client commands (`gateway ingest`, `gateway eval`): they load nothing of the server,
and they share how they find the gateway and the key: flags or the environment, and a usage
error naming all three ways when no key is given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.eval.cli import eval_command
from gateway.ingest_client.cli import ingest

COMMANDS = {"ingest": ingest, "eval": eval_command}
SERVER_LIBRARIES = ("fastapi", "starlette", "sqlalchemy", "psycopg", "pydantic_settings")


@pytest.mark.parametrize("package", ["gateway.ingest_client", "gateway.eval"])
def test_a_client_command_imports_no_server_module(package: str) -> None:
    probe = f"import json, sys, {package}.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    ours = {m for m in loaded if m.startswith("gateway.")}
    # eval's store and routes are the server's side of it (the database, /admin/evals).
    client = {
        m for m in ours if m.startswith(package) and m.split(".")[-1] not in {"store", "routes"}
    }
    assert ours - client == {"gateway.client_options"}, ours
    assert not [m for m in loaded if m.split(".")[0] in SERVER_LIBRARIES]


@pytest.mark.parametrize(
    ("command", "args"), [("ingest", ["--store", "docs", "."]), ("eval", ["--model", "m"])]
)
def test_a_client_command_without_a_key_says_how_to_give_one(
    command: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("GATEWAY_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(COMMANDS[command], args)
    assert result.exit_code == 2
    assert "Give an API key: --api-key, GATEWAY_API_KEY or OPENAI_API_KEY." in result.output


@pytest.mark.parametrize("command", ["ingest", "eval"])
def test_the_base_url_and_key_come_from_the_environment(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_BASE_URL", "http://gpu-box:8080/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    context = COMMANDS[command].make_context(command, [], resilient_parsing=True)
    assert context.params["base_url"] == "http://gpu-box:8080/v1"
    assert context.params["api_key"] == "sk-from-env"
