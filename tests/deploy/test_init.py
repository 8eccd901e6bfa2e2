"""`gateway init`: .env from .env.example with fresh secrets, never losing what is there."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import _register, cli
from gateway.deploy.init import render
from tests.deploy.compose import ROOT

EXAMPLE = """# comment kept
DB_PASSWORD=
ADMIN_KEY=
HF_TOKEN=
PORT=8080
"""


def counter() -> Callable[[int], str]:
    n = iter(range(100))
    return lambda size: f"s{next(n)}-{size}"


def test_a_new_env_gets_every_empty_password_and_key() -> None:
    text, report = render(EXAMPLE, None, counter())
    assert text == "# comment kept\nDB_PASSWORD=s0-32\nADMIN_KEY=s1-32\nHF_TOKEN=\nPORT=8080\n"
    assert report.created and report.generated == ["DB_PASSWORD", "ADMIN_KEY"]


def test_an_existing_env_keeps_its_lines_and_gains_what_it_lacks() -> None:
    existing = "# mine\nDB_PASSWORD='my own'\nADMIN_KEY=\nEXTRA=1\n"
    text, report = render(EXAMPLE, existing, counter())
    assert text.startswith("# mine\nDB_PASSWORD='my own'\nADMIN_KEY=s0-32\nEXTRA=1\n")
    assert text.endswith("# Added by gateway init from .env.example\nHF_TOKEN=\nPORT=8080\n")
    assert report.generated == ["ADMIN_KEY"]
    assert report.added == ["HF_TOKEN", "PORT"]
    assert report.kept == ["DB_PASSWORD", "EXTRA"]


def test_running_twice_changes_nothing() -> None:
    once, _ = render(EXAMPLE, None)
    twice, report = render(EXAMPLE, once)
    assert twice == once
    assert not (report.created or report.generated or report.added)


def test_secrets_are_random_hex() -> None:
    text, _ = render(EXAMPLE, None)
    first = re.search(r"^DB_PASSWORD=(.*)$", text, re.MULTILINE)
    assert first and re.fullmatch(r"[0-9a-f]{64}", first.group(1))
    again, _ = render(EXAMPLE, None)
    assert again != text


def test_gateway_init_writes_a_private_file_and_prints_no_secret(tmp_path: Path) -> None:
    _register()
    with CliRunner().isolated_filesystem(temp_dir=tmp_path) as folder:
        (Path(folder) / ".env.example").write_text((ROOT / ".env.example").read_text())
        result = CliRunner().invoke(cli, ["init"])
        env = (Path(folder) / ".env").read_text()
        mode = stat.S_IMODE((Path(folder) / ".env").stat().st_mode)
    assert result.exit_code == 0, result.output
    assert "generated new secrets: POSTGRES_PASSWORD, GATEWAY_ADMIN_KEY, VLLM_API_KEY" in (
        result.output
    )
    assert mode == 0o600
    secrets = re.findall(r"^[A-Z_]+(?:PASSWORD|KEY)=([0-9a-f]{64})$", env, re.MULTILINE)
    assert len(secrets) == 4  # the three required ones and Grafana's
    assert not any(secret in result.output for secret in secrets)


def test_without_an_example_it_says_where_to_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.deploy.init"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "run this in the folder that holds docker-compose.yml" in result.stderr
