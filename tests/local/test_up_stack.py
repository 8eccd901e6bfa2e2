"""`gateway up` as values: engine specs, the gateway's environment, advice, printed text."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from gateway.local.models import CHAT_MODEL, EMBEDDING_MODEL, LocalModel
from gateway.local.stack import (
    STACK_ENV,
    aliases_for,
    client_host,
    engine_hints,
    engine_specs,
    example_model,
    gateway_argv,
    gateway_env,
    log_gist,
    ready_text,
)
from gateway.local.up import parse_upstreams

CHAT = LocalModel(CHAT_MODEL, Path("/cache/smollm2"))
EMBED = LocalModel(EMBEDDING_MODEL, Path("/site/minilm/model"))


def test_engines_get_disjoint_cpus_loopback_and_their_runner() -> None:
    chat, embed = engine_specs(CHAT, EMBED, [0, 1, 2, 3], [7001, 7002])
    assert (chat.served_name, chat.port, chat.max_model_len) == (CHAT_MODEL, 7001, 2048)
    assert (embed.served_name, embed.port, embed.runner) == (EMBEDDING_MODEL, 7002, "pooling")
    assert chat.extra_env["VLLM_CPU_OMP_THREADS_BIND"] == "0,1"
    assert embed.extra_env["VLLM_CPU_OMP_THREADS_BIND"] == "2,3"
    assert chat.host == embed.host == "127.0.0.1"  # vLLM is never reachable from outside


def test_one_cpu_is_shared_rather_than_leaving_an_engine_none() -> None:
    chat, embed = engine_specs(CHAT, EMBED, [3], [1, 2])
    assert chat.extra_env["VLLM_CPU_OMP_THREADS_BIND"] == "3"
    assert embed.extra_env["VLLM_CPU_OMP_THREADS_BIND"] == "3"


def test_aliases_only_for_models_that_are_served() -> None:
    assert aliases_for([CHAT_MODEL, EMBEDDING_MODEL]) == {
        "gpt-4o-mini": CHAT_MODEL,
        "claude-*": CHAT_MODEL,
        "text-embedding-3-small": EMBEDDING_MODEL,
    }
    assert aliases_for(["llama"]) == {}


def test_example_model_prefers_the_local_chat_model_and_skips_the_embedder() -> None:
    assert example_model([EMBEDDING_MODEL, CHAT_MODEL]) == CHAT_MODEL
    assert example_model([EMBEDDING_MODEL, "qwen"]) == "qwen"
    assert example_model([EMBEDDING_MODEL]) is None


def test_gateway_env_wires_database_engines_admin_key_and_aliases() -> None:
    base = {"PATH": "/bin", "GATEWAY_WORKERS": "4", STACK_ENV: "/data"}
    env = gateway_env(
        base,
        database_url="postgresql://postgres:@/gateway?host=/data/postgres",
        upstreams=["http://127.0.0.1:1", "http://127.0.0.1:2"],
        admin_key="sk-admin-x",
        served=[CHAT_MODEL, EMBEDDING_MODEL],
    )
    assert env["GATEWAY_DATABASE_URL"] == "postgresql://postgres:@/gateway?host=/data/postgres"
    assert env["GATEWAY_UPSTREAMS"] == "http://127.0.0.1:1,http://127.0.0.1:2"
    assert env["GATEWAY_ADMIN_KEY"] == "sk-admin-x"
    assert env["GATEWAY_EMBEDDING_MODEL"] == EMBEDDING_MODEL
    assert json.loads(env["GATEWAY_MODEL_ALIASES"])["gpt-4o-mini"] == CHAT_MODEL
    assert env["GATEWAY_MIGRATE_ON_START"] == "false"
    assert "GATEWAY_WORKERS" not in env  # one worker: no Redis needed for limits
    assert env["PATH"] == "/bin" and env[STACK_ENV] == "/data"
    assert base["GATEWAY_WORKERS"] == "4"  # the caller's mapping is left alone


def test_gateway_env_names_no_embedding_model_that_is_not_served() -> None:
    env = gateway_env(
        {}, database_url="postgresql://x", upstreams=["http://e:8000"], admin_key="a", served=["q"]
    )
    assert "GATEWAY_EMBEDDING_MODEL" not in env
    assert json.loads(env["GATEWAY_MODEL_ALIASES"]) == {}


def test_gateway_is_served_by_the_module_entry_point() -> None:
    argv = gateway_argv("0.0.0.0", 9000, python="/py")
    assert argv[:4] == ["/py", "-m", "gateway", "serve"]
    assert argv[4:] == ["--host", "0.0.0.0", "--port", "9000", "--workers", "1"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("::1", "[::1]")],
)
def test_client_host(host: str, expected: str) -> None:
    assert client_host(host) == expected


def test_hints_name_the_known_causes() -> None:
    assert "uninstall -y torchvision" in engine_hints("operator torchvision::nms does not exist")[0]
    assert "[local]" in engine_hints("ModuleNotFoundError: No module named 'vllm'")[0]
    assert "5 GiB" in engine_hints("RuntimeError: Cannot allocate memory")[0]
    assert "--startup-timeout" in engine_hints("something else")[0]


def test_log_gist_drops_vllm_prefixes_and_stays_short() -> None:
    line = "(EngineCore pid=5496) INFO 11-22 04:06:55 [loader.py:185] Loading weights took 0.5 s"
    assert log_gist(line) == "Loading weights took 0.5 s"
    assert log_gist("plain line") == "plain line"
    assert len(log_gist("x" * 500)) == 90


def test_ready_text_has_url_key_and_examples_that_use_them() -> None:
    text = ready_text(
        base_url="http://127.0.0.1:8080/v1",
        api_key="sk-gw-abc",
        model=CHAT_MODEL,
        created=True,
        data_dir=Path("/data"),
        database_url="postgresql://postgres:@/gateway?host=/data/postgres",
        took_s=61.4,
    )
    assert "Base URL:  http://127.0.0.1:8080/v1\n" in text
    assert "API key:   sk-gw-abc\n" in text
    assert "curl -s http://127.0.0.1:8080/v1/chat/completions" in text
    assert 'OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="sk-gw-abc")' in text
    assert f'"model": "{CHAT_MODEL}"' in text
    assert "/data/api-key" in text and "/data/admin-key" in text
    assert "Gateway ready in 61 s." in text


def test_upstreams_are_normalised_deduplicated_and_checked() -> None:
    assert parse_upstreams(("http://a:8000/v1/", "http://a:8000", "https://b")) == (
        "http://a:8000",
        "https://b",
    )
    with pytest.raises(click.BadParameter):
        parse_upstreams(("a:8000",))


def test_local_engines_and_the_gateway_share_one_engine_key() -> None:
    specs = engine_specs(CHAT, EMBED, [0, 1], [7001, 7002], "sk-engine-1")
    assert [spec.api_key for spec in specs] == ["sk-engine-1", "sk-engine-1"]
    env = gateway_env(
        {"GATEWAY_UPSTREAM_API_KEY": "old"},
        database_url="postgresql://x",
        upstreams=["http://127.0.0.1:7001"],
        admin_key="a",
        served=[CHAT_MODEL],
        upstream_api_key="sk-engine-1",
    )
    assert env["GATEWAY_UPSTREAM_API_KEY"] == "sk-engine-1"


def test_the_users_own_engines_keep_the_users_upstream_key() -> None:
    env = gateway_env(
        {"GATEWAY_UPSTREAM_API_KEY": "users-own"},
        database_url="postgresql://x",
        upstreams=["http://vllm:8000"],
        admin_key="a",
        served=["q"],
    )
    assert env["GATEWAY_UPSTREAM_API_KEY"] == "users-own"
