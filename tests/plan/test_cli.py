"""`gateway plan` through click: outputs, JSON fields, folders, and exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.plan.cli import models, plan

FIXTURES = Path(__file__).parent / "fixtures" / "published_configs"


def run(*args: str) -> Result:
    return CliRunner().invoke(plan, list(args))


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_json_has_the_contracted_fields() -> None:
    out = run_json(
        "--model",
        "llama-3.1-70b",
        "--quant",
        "awq",
        "--gpu",
        "rtx5090",
        "--context",
        "8192",
        "--kv-cache-dtype",
        "fp8",
    )
    for field in (
        "fits",
        "weights_gib",
        "kv_bytes_per_token",
        "max_context_tokens",
        "cpu_offload_gb",
        "vllm_args",
    ):
        assert field in out
    assert out["fits"] is False
    assert out["weights_gib"] == pytest.approx(37.04, abs=0.01)
    assert out["kv_bytes_per_token"] == 163_840
    assert out["max_context_tokens"] == 0
    assert out["cpu_offload_gb"] == 13
    args = out["vllm_args"]
    assert args[args.index("--cpu-offload-gb") + 1] == "13"
    assert args[args.index("--max-model-len") + 1] == "8192"
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8"


def test_text_shows_the_arithmetic() -> None:
    result = run("--model", "llama-3.1-70b", "--quant", "bf16", "--gpu", "48", "--context", "4096")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "2 (K,V) x 80 layers x 8 KV heads x 128 head dim x 2 B = 327,680 B" in text
    assert "48.00 GiB x 0.9 = 43.20 GiB" in text
    assert "for the KV cache" in text and "tokens" in text
    assert "DOES NOT FIT" in text  # 131 GiB of bf16 weights
    assert "Assumptions" in text and "--max-num-batched-tokens 2048" in text


def test_fitting_plan_prints_the_command() -> None:
    out = run_json("--model", "qwen2.5-32b-awq", "--gpu", "rtx5090", "--context", "32768")
    assert out["fits"] is True and out["cpu_offload_gb"] == 0
    assert out["vllm_args"][0] == "/models/qwen2.5-32b-awq"
    assert out["vllm_command"].startswith("vllm serve /models/qwen2.5-32b-awq ")


def test_architecture_plus_quant_finds_the_catalog_checkpoint() -> None:
    out = run_json(
        "--model",
        "llama-3.3-70b",
        "--quant",
        "IQ2_M",
        "--gpu",
        "rtx5090",
        "--context",
        "16384",
        "--kv-cache-dtype",
        "fp8",
    )
    assert out["vllm_args"][0].endswith("/Llama-3.3-70B-Instruct-IQ2_M.gguf")
    assert "--tokenizer" in out["vllm_args"]
    assert out["weights_measured"] is True


def test_when_offload_cannot_help_the_largest_context_is_served() -> None:
    # 2 x 131,072 tokens x 131,072 B = 32 GiB of KV cache: more than the card, whatever moves
    out = run_json(
        "--model", "llama-3.1-8b", "--gpu", "rtx4090", "--context", "131072", "--concurrency", "2"
    )
    assert out["fits"] is False and out["cpu_offload_gb"] is None
    assert 0 < out["max_context_tokens"] < 131072
    args = out["vllm_args"]
    assert args[args.index("--max-model-len") + 1] == str(out["max_context_tokens"])
    assert "--cpu-offload-gb" not in args


def test_when_offload_helps_the_command_uses_it() -> None:
    out = run_json("--model", "llama-3.1-8b", "--gpu", "rtx4090", "--context", "65536")
    # 8 GiB of KV cache, 5.14 GiB free: 2.86 short, + 0.5 margin, rounded up
    assert out["fits"] is False and out["cpu_offload_gb"] == 4
    args = out["vllm_args"]
    assert args[args.index("--cpu-offload-gb") + 1] == "4"
    assert args[args.index("--max-model-len") + 1] == "65536"


def test_hf_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text((FIXTURES / "Llama-3.1-8B-Instruct.json").read_text())
    with open(folder / "model.safetensors", "wb") as f:  # a sparse stand-in of 10 GB
        f.truncate(10_000_000_000)
    out = run_json("--model", str(folder), "--gpu", "rtx4090", "--context", "8192")
    assert out["quant"] == "bf16"  # from torch_dtype
    assert out["weights_measured"] is True
    assert out["weights_gib"] == pytest.approx(10e9 / 2**30, abs=0.01)
    assert out["vllm_args"][0] == str(folder)
    # another quant than the checkpoint's: the size is computed, not read from the files
    out = run_json(
        "--model", str(folder), "--quant", "fp8", "--gpu", "rtx4090", "--context", "8192"
    )
    assert out["weights_measured"] is False
    assert "--quantization" in out["vllm_args"]


def test_awq_folder_declares_its_quant(tmp_path: Path) -> None:
    config = json.loads((FIXTURES / "Qwen2.5-32B-Instruct.json").read_text())
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128}
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = run_json("--model", str(tmp_path), "--gpu", "rtx5090", "--context", "8192")
    assert out["quant"] == "awq"
    assert out["weights_gib"] == pytest.approx(18.0, abs=0.01)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--model", "gpt-5", "--gpu", "rtx5090", "--context", "8192"],
            ["unknown model 'gpt-5'", "llama-3.1-70b", "qwen2.5-32b", "config.json"],
        ),
        (
            ["--model", "llama-3.1-70b", "--quant", "int3", "--gpu", "rtx5090", "--context", "8"],
            ["Invalid value"],
        ),
        (
            ["--model", "llama-3.1-70b", "--quant", "int3", "--gpu", "rtx5090", "--context", "64"],
            ["unknown quantization 'int3'", "awq", "gptq", "iq2_m"],
        ),
        (
            ["--model", "llama-3.1-70b", "--quant", "awq", "--gpu", "h100", "--context", "64"],
            ["unknown GPU 'h100'", "rtx3090", "rtx4090", "rtx5090"],
        ),
        (
            ["--model", "llama-3.1-70b", "--gpu", "rtx5090", "--context", "64"],
            ["--quant is required"],
        ),
        (
            ["--model", "qwen2.5-32b", "--quant", "awq", "--gpu", "rtx5090", "--context", "65536"],
            ["at most 32,768 tokens"],
        ),
        (
            [
                "--model",
                "qwen2.5-32b-awq",
                "--quant",
                "gptq",
                "--gpu",
                "rtx5090",
                "--context",
                "64",
            ],
            ["is a awq checkpoint"],
        ),
        (
            ["--model", "all-minilm-l6-v2", "--gpu", "rtx5090", "--context", "64"],
            ["embedding model"],
        ),
        (
            [
                "--model",
                "llama-3.1-70b",
                "--quant",
                "awq",
                "--gpu",
                "rtx5090",
                "--context",
                "64",
                "--kv-cache-dtype",
                "int4",
            ],
            ["'auto'", "'fp8'"],
        ),
    ],
)
def test_bad_input_exits_2_with_the_choices(args: list[str], expected: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.output


def test_folder_without_config_exits_2(tmp_path: Path) -> None:
    result = run("--model", str(tmp_path), "--quant", "awq", "--gpu", "24", "--context", "64")
    assert result.exit_code == 2
    assert "has no config.json" in result.output


def test_models_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(models, ["list", "--dest", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {
        "llama-3.3-70b-iq2m",
        "llama-3.3-70b-awq",
        "qwen2.5-32b-awq",
        "all-minilm-l6-v2",
    } <= set(rows)
    assert not any(r["pulled"] for r in rows.values())
    text = CliRunner().invoke(models, ["list", "--dest", str(tmp_path)]).output
    assert "bartowski/Llama-3.3-70B-Instruct-GGUF" in text


def test_pull_unknown_model_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(models, ["pull", "nope", "--dest", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output and "qwen2.5-32b-awq" in result.output
