"""`gateway keys ...` and `gateway migrate` straight against Postgres, via click's runner."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from gateway.db.cli import migrate
from gateway.db.migrate import current
from gateway.keys.cli import keys
from tests.db.test_migrations import HEAD


def _run(command: Any, args: list[str], url: str | None) -> Result:
    env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_CONFIG": None}
    return CliRunner().invoke(command, args, env=env, catch_exceptions=False)


def test_create_list_revoke_for_people_and_scripts(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = _run(
        keys,
        [
            "create", "--name", "laptop", "--model", "a", "--model", "b", "--rpm", "30",
            "--tpm", "5000", "--max-parallel", "2", "--daily-tokens", "100000",
            "--monthly-tokens", "900000", "--expires-in", "30d", "--metadata", "team=ml",
        ],
        database_url,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.stdout.splitlines()[1]
    assert secret.startswith("sk-gw-")
    assert "will not be shown again" in made.stderr

    scripted = _run(keys, ["create", "--name", "ci", "--json"], database_url)
    record = json.loads(scripted.stdout)
    assert record["key"].startswith("sk-gw-") and record["name"] == "ci"
    assert record["trusted_front_end"] is False

    front = _run(
        keys,
        ["create", "--name", "owui", "--trusted-front-end", "--end-user-rpm", "20",
         "--end-user-daily-tokens", "200000", "--json"],
        database_url,
    )  # fmt: skip
    owui = json.loads(front.stdout)
    assert owui["trusted_front_end"] is True
    assert (owui["end_user_rpm"], owui["end_user_daily_tokens"]) == (20, 200_000)

    listed = _run(keys, ["list"], database_url)
    assert listed.exit_code == 0
    header, *lines = listed.stdout.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "PREFIX", "STATUS"]
    assert "END USERS" in header
    assert len(lines) == 3 and "laptop" in lines[0] and "a,b" in lines[0]
    assert "20 rpm each" in next(line for line in lines if "owui" in line)
    assert secret not in listed.stdout and record["key"] not in listed.stdout
    assert secret[:12] in listed.stdout  # the prefix, to recognise it

    as_json = json.loads(_run(keys, ["list", "--json"], database_url).stdout)
    laptop = next(k for k in as_json if k["name"] == "laptop")
    assert laptop["rpm"] == 30 and laptop["max_parallel"] == 2
    assert laptop["metadata"] == {"team": "ml"} and laptop["expires_at"]
    assert all("key" not in k for k in as_json)

    revoked = _run(keys, ["revoke", laptop["id"]], database_url)
    assert revoked.exit_code == 0 and f"Revoked {laptop['id']}" in revoked.stdout
    again = json.loads(_run(keys, ["revoke", laptop["id"], "--json"], database_url).stdout)
    assert again["status"] == "revoked"
    missing = _run(keys, ["revoke", "key_nope"], database_url)
    assert missing.exit_code == 1 and "no key with id" in missing.output

    assert secret not in caplog.text and record["key"] not in caplog.text


def test_create_refuses_bad_flags_before_touching_the_database(database_url: str) -> None:
    for args, message in (
        (["--name", "x", "--rpm", "0"], "--rpm"),
        (["--name", "x", "--expires-in", "soon"], "not a duration"),
        (["--name", "x", "--expires-at", "2001-01-01T00:00:00Z"], "--expires-at"),
        (["--name", "x", "--expires-in", "1d", "--expires-at", "2099-01-01"], "not both"),
        (["--name", "x", "--metadata", "novalue"], "KEY=VALUE"),
        (["--name", "x", "--end-user-rpm", "5"], "trusted_front_end"),
        (["--name", "x", "--trusted-front-end", "--end-user-tpm", "0"], "--end-user-tpm"),
    ):
        result = _run(keys, ["create", *args], database_url)
        assert result.exit_code == 2 and message in result.output, result.output
    assert json.loads(_run(keys, ["list", "--json"], database_url).stdout) == []


def test_a_missing_database_url_says_what_to_set() -> None:
    for command, args in ((keys, ["list"]), (migrate, [])):
        result = _run(command, args, None)
        assert result.exit_code == 1
        assert "GATEWAY_DATABASE_URL is not set" in result.output


def test_an_unreachable_database_is_a_clear_error(tmp_path: Any) -> None:
    url = f"postgresql://gw:hunter2@/gw?host={tmp_path}"
    result = _run(keys, ["list"], url)
    assert result.exit_code == 1 and "cannot use the database" in result.output
    assert "hunter2" not in result.output


def test_migrate_applies_and_reports_the_revision(pg_server: Any) -> None:
    name = f"gw_empty_{uuid.uuid4().hex[:8]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    url = make_url(pg_server.get_uri()).set(database=name).render_as_string(hide_password=False)
    first = _run(migrate, [], url)
    assert first.exit_code == 0 and f"to revision {HEAD}" in first.stdout
    assert current(url) == HEAD
    second = _run(migrate, [], url)
    assert f"up to date (revision {HEAD})" in second.stdout
