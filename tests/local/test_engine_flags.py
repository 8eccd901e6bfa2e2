"""The argv `gateway up` gives its CPU engines, parsed by the installed vLLM's own parser.

test_engine_argv.py checks what build_argv writes; this checks that vLLM reads it as meant
(a flag renamed or retyped in a vLLM upgrade fails here, not at an engine's start).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.local.engine import VLLM_MODULE, EngineSpec, build_argv
from gateway.local.models import CHAT_MODEL, EMBEDDING_MODEL, LocalModel
from gateway.local.stack import CHAT_MAX_MODEL_LEN, engine_specs
from tests.conftest import missing_prerequisite
from tests.deploy.compose import ROOT

CHAT = LocalModel(CHAT_MODEL, Path("/cache/smollm2"))
EMBED = LocalModel(EMBEDDING_MODEL, Path("/site/minilm/model"))
SPECS = engine_specs(CHAT, EMBED, [0, 1], [7001, 7002])


def vllm_parse(argvs: list[list[str]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.local.vllm_parse"],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"tests.local.vllm_parse failed:\n{done.stderr[-3000:]}"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


# Command lines vLLM must refuse: the checks are only worth something if these fail.
REFUSED = {
    "unknown flag": ["--model", "/m", "--enforce-eagerly"],
    "runner outside its choices": ["--model", "/m", "--runner", "embed"],
}


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        missing_prerequisite('vLLM is not installed (pip install -e ".[local]")')


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict[str, Any]]:
    """vLLM's reading of each spec's argv and of REFUSED, by name (one child process:
    importing vLLM takes seconds)."""
    require_vllm()
    argvs = {}
    for spec in SPECS:
        _python, dash_m, module, *args = build_argv(spec)
        assert (dash_m, module) == ("-m", VLLM_MODULE)
        argvs[spec.served_name] = args
    argvs |= REFUSED
    return dict(zip(argvs, vllm_parse(list(argvs.values())), strict=True))


def test_the_engine_module_exists() -> None:
    require_vllm()
    assert importlib.util.find_spec(VLLM_MODULE) is not None, VLLM_MODULE


@pytest.mark.parametrize(
    ("spec", "runner", "max_model_len"),
    [(SPECS[0], "auto", CHAT_MAX_MODEL_LEN), (SPECS[1], "pooling", None)],
    ids=["chat", "pooling"],
)
def test_vllm_reads_the_argv_as_the_spec_means(
    parsed: dict[str, dict[str, Any]], spec: EngineSpec, runner: str, max_model_len: int | None
) -> None:
    result = parsed[spec.served_name]
    assert "error" not in result, f"vLLM rejects the {spec.served_name} argv: {result['error']}"
    args = result["args"]
    assert args["model"] == str(spec.model)
    assert args["served_model_name"] == [spec.served_name]
    assert (args["host"], args["port"]) == (spec.host, spec.port)
    # The chat spec leaves the runner to vLLM ("auto"); the embedder asks for pooling.
    assert args["runner"] == runner
    assert args["max_model_len"] == max_model_len
    assert args["dtype"] == spec.dtype == "float32"
    assert args["enforce_eager"] is spec.enforce_eager is True
    assert args["disable_uvicorn_access_log"] is True


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_parser_refuses_what_vllm_does_not_define(
    parsed: dict[str, dict[str, Any]], name: str
) -> None:
    assert "error" in parsed[name], f"vLLM accepted {REFUSED[name]}"
    assert REFUSED[name][-1] in parsed[name]["error"]
