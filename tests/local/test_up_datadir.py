"""The data dir of `gateway up`: where it is, what is in it, secrets kept 0600, one run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.local.datadir import (
    DataDir,
    admin_key,
    default_data_dir,
    engine_key,
    exclusive,
    read_secret,
    write_secret,
)
from gateway.local.errors import LocalStackError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_is_the_users_data_folder_not_the_working_directory(tmp_path: Path) -> None:
    assert default_data_dir({"HOME": str(tmp_path)}) == Path.home() / ".local/share/gateway"
    assert default_data_dir({"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/gateway")
    assert default_data_dir({"GATEWAY_DATA_DIR": "/d", "XDG_DATA_HOME": "/xdg"}) == Path("/d")


def test_layout(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "gw")
    data.create()
    assert data.postgres == tmp_path / "gw/postgres"
    assert data.log("gateway") == tmp_path / "gw/logs/gateway.log"
    assert data.logs.is_dir()
    assert {data.admin_key_file.name, data.api_key_file.name} == {"admin-key", "api-key"}


def test_secrets_are_written_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "api-key"
    write_secret(path, "sk-gw-1")
    assert mode(path) == 0o600
    assert read_secret(path) == "sk-gw-1"
    write_secret(path, "sk-gw-2")  # replaced atomically, still private
    assert read_secret(path) == "sk-gw-2" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["api-key"]  # no staging file left


def test_a_secret_left_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "admin-key"
    path.write_text("sk-admin-x\n")
    path.chmod(0o644)
    assert read_secret(path) == "sk-admin-x"
    assert mode(path) == 0o600


def test_missing_or_empty_secret_is_none(tmp_path: Path) -> None:
    assert read_secret(tmp_path / "nope") is None
    (tmp_path / "empty").write_text("\n")
    assert read_secret(tmp_path / "empty") is None


def test_admin_key_is_generated_once(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    first = admin_key(data)
    assert first.startswith("sk-admin-") and len(first) > 40
    assert admin_key(data) == first
    assert mode(data.admin_key_file) == 0o600


def test_fresh_log_keeps_the_previous_run(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create()
    data.log("gateway").write_text("run 1\n")
    path = data.fresh_log("gateway")
    assert not path.exists()
    assert (data.logs / "gateway.log.1").read_text() == "run 1\n"


def test_one_run_per_data_dir(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    with exclusive(data):
        assert data.lock_file.read_text() == str(os.getpid())
        second = exclusive(data)
        with pytest.raises(LocalStackError, match=f"pid {os.getpid()}.*--data-dir"):
            second.__enter__()
    with exclusive(data):  # released when the first run ended
        pass


def test_engine_key_is_generated_once_private_and_apart_from_the_admin_key(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    first = engine_key(data)
    assert first.startswith("sk-engine-") and len(first) > 40
    assert engine_key(data) == first and first != admin_key(data)
    assert data.engine_key_file.name == "engine-key" and mode(data.engine_key_file) == 0o600
