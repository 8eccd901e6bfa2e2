"""The vLLM command line and environment, built without starting anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.local.engine import (
    VLLM_MODULE,
    EngineSpec,
    build_argv,
    build_env,
    free_port,
    split_cpus,
)


def chat_spec(**overrides: object) -> EngineSpec:
    values: dict[str, object] = {
        "model": Path("/cache/smollm2"),
        "served_name": "smollm2-135m-instruct",
        "port": 8011,
        "max_model_len": 2048,
    }
    return EngineSpec(**(values | overrides))  # type: ignore[arg-type]


def test_chat_argv_is_complete_and_ordered() -> None:
    assert build_argv(chat_spec(), python="/venv/bin/python") == [
        "/venv/bin/python",
        "-m",
        VLLM_MODULE,
        "--model",
        "/cache/smollm2",
        "--served-model-name",
        "smollm2-135m-instruct",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
        "--dtype",
        "float32",
        "--max-model-len",
        "2048",
        "--enforce-eager",
        "--disable-uvicorn-access-log",
    ]


def test_embedding_argv_asks_for_the_pooling_runner() -> None:
    spec = chat_spec(served_name="all-minilm-l6-v2", runner="pooling", max_model_len=None)
    argv = build_argv(spec)
    assert argv[argv.index("--runner") + 1] == "pooling"
    assert "--max-model-len" not in argv


def test_options_can_be_turned_off_and_extended() -> None:
    argv = build_argv(chat_spec(enforce_eager=False, extra_args=("--seed", "7")))
    assert "--enforce-eager" not in argv
    assert argv[-2:] == ["--seed", "7"]


def test_env_is_offline_and_sizes_the_kv_cache() -> None:
    env = build_env(chat_spec(kv_cache_gib=2), {"PATH": "/bin", "HF_HUB_OFFLINE": "0"})
    assert env["PATH"] == "/bin"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["VLLM_NO_USAGE_STATS"] == "1"


def test_extra_env_wins() -> None:
    spec = chat_spec(extra_env={"VLLM_CPU_OMP_THREADS_BIND": "nobind"})
    assert build_env(spec, {})["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"


def test_base_url_is_the_root_without_v1() -> None:
    assert chat_spec(port=9000).base_url == "http://127.0.0.1:9000"


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("cpus", "parts", "binds"),
    [
        ([0, 1], 2, ["0", "1"]),
        ([0, 1, 2, 3, 4], 2, ["0,1,2", "3,4"]),
        ([3, 2, 1, 0], 1, ["0,1,2,3"]),
        ([0], 2, ["0", "0"]),
        ([4, 6], 3, ["4", "6", "4"]),
    ],
)
def test_split_cpus_gives_engines_disjoint_cores(
    cpus: list[int], parts: int, binds: list[str]
) -> None:
    assert split_cpus(cpus, parts) == binds


def test_split_cpus_needs_something_to_split() -> None:
    with pytest.raises(ValueError, match="at least one"):
        split_cpus([], 2)


def test_the_api_key_goes_in_the_environment_never_on_the_command_line() -> None:
    # Any local user can read a command line (ps, /proc/<pid>/cmdline); the environment
    # only the process's owner. vLLM reads VLLM_API_KEY as it reads --api-key.
    spec = chat_spec(api_key="sk-engine-secret")
    assert build_env(spec, {"VLLM_API_KEY": "stale"})["VLLM_API_KEY"] == "sk-engine-secret"
    assert not any("sk-engine-secret" in part for part in build_argv(spec))
    assert "--api-key" not in build_argv(spec)
    assert "sk-engine-secret" not in repr(spec)


def test_no_key_leaves_the_engine_as_the_user_configured_it() -> None:
    assert "VLLM_API_KEY" not in build_env(chat_spec(), {})
