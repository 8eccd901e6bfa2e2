"""`gateway up --chat-group`: the engine group the gateway is given (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import _register, cli
from gateway.config import Settings
from gateway.local.chat_group import chat_group
from gateway.local.models import LocalModel
from gateway.local.stack import embedding_only, gateway_env


def test_two_process_engines_of_the_chat_model_under_two_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = LocalModel(name="smollm2-135m-instruct", path=tmp_path / "smollm2")
    group = chat_group(
        chat,
        ports=[7101, 7102],
        logs=[tmp_path / "a.log", tmp_path / "b.log"],
        cpus="0",
        max_model_len=2048,
    )
    env = gateway_env(
        {},
        database_url="postgresql://x",
        upstreams=["http://127.0.0.1:7200"],
        admin_key="admin",
        served=["all-minilm-l6-v2", "smollm2-135m-instruct", "smollm2-135m-instruct-b"],
        upstream_api_key="sk-engines",
        engine_groups=[group],
    )
    assert "sk-engines" not in env["GATEWAY_ENGINE_GROUPS"]  # the gateway hands it over
    monkeypatch.setenv("GATEWAY_ENGINE_GROUPS", env["GATEWAY_ENGINE_GROUPS"])
    (parsed,) = Settings().engine_groups
    assert parsed.max_awake == 1
    a, b = parsed.engines
    assert (a.model, b.model) == ("smollm2-135m-instruct", "smollm2-135m-instruct-b")
    assert (a.url, b.url) == ("http://127.0.0.1:7101", "http://127.0.0.1:7102")
    for engine, port in ((a, 7101), (b, 7102)):
        assert engine.control == "process"
        argv = engine.command
        assert argv[argv.index("--served-model-name") + 1] == engine.model
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
        assert argv[argv.index("--model") + 1] == str(chat.path)
        assert (
            engine.env["HF_HUB_OFFLINE"] == "1" and engine.env["VLLM_CPU_OMP_THREADS_BIND"] == "0"
        )
        assert "VLLM_API_KEY" not in engine.env
    assert json.loads(env["GATEWAY_MODEL_ALIASES"]) == {
        "gpt-4o-mini": "smollm2-135m-instruct",
        "claude-*": "smollm2-135m-instruct",
        "text-embedding-3-small": "all-minilm-l6-v2",
    }


def test_the_embedding_engine_alone_keeps_to_its_cpus(tmp_path: Path) -> None:
    (spec,) = embedding_only(LocalModel("all-minilm-l6-v2", tmp_path), [0, 1], 7300, "k")
    assert spec.runner == "pooling" and spec.extra_env["VLLM_CPU_OMP_THREADS_BIND"] == "1"


def test_chat_group_does_not_go_with_upstream(tmp_path: Path) -> None:
    _register()
    result = CliRunner().invoke(
        cli, ["up", "--chat-group", "--upstream", "http://127.0.0.1:1", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--chat-group" in result.output


@pytest.mark.parametrize("flag", ["--chat-group"])
def test_the_flag_is_documented(flag: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"gateway up {flag}" in readme
