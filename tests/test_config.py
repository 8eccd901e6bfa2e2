from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import Settings


def test_upstreams_from_env_tolerate_v1_and_slashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_UPSTREAMS", "http://a:8000/v1, http://b:8000/ ,")
    assert Settings().upstreams == ["http://a:8000", "http://b:8000"]


def test_yaml_file_gives_aliases_and_env_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams: [http://yaml:8000]\nmodel_aliases:\n  gpt-4o-mini: smollm2\nport: 9000\n"
    )
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    settings = Settings()
    assert settings.model_aliases == {"gpt-4o-mini": "smollm2"}
    assert settings.upstreams == ["http://yaml:8000"]
    assert settings.port == 9100


def test_missing_yaml_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG", "/nonexistent/gateway.yaml")
    with pytest.raises(ValueError, match="no such file"):
        Settings()


def test_secrets_are_masked_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", "admin-secret")
    monkeypatch.setenv("GATEWAY_UPSTREAM_API_KEY", "engine-secret")
    text = repr(Settings())
    assert "admin-secret" not in text and "engine-secret" not in text


def test_serve_reports_bad_configuration_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "not-a-port")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "GATEWAY_PORT" in result.output and "Traceback" not in result.output


def test_several_workers_without_redis_are_refused_when_limits_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u@h/db")
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "GATEWAY_REDIS_URL" in result.output


def test_aliases_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MODEL_ALIASES", '{"gpt-4o-mini": "smollm2-135m-instruct"}')
    assert Settings().model_aliases == {"gpt-4o-mini": "smollm2-135m-instruct"}
