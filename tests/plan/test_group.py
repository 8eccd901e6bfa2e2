"""`gateway plan` for an engine group: the awake budget per model, what a sleeping model keeps
on the card, the host RAM level-1 sleep needs, and the refusals (worked out by hand)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from gateway.plan.catalog import load_catalog
from gateway.plan.cli import plan as plan_command
from gateway.plan.group import MARGIN_BYTES, GroupInput, asleep_bytes, plan_group
from gateway.plan.hardware import GIB, GPUS
from gateway.plan.planner import CUDA_CONTEXT_BYTES, PlanInput
from gateway.plan.resolve import resolve_model

RTX5090 = GPUS["rtx5090"]
GROUP = ["--gpu", "rtx5090", "--model", "llama-3.3-70b-iq2m", "--model", "qwen2.5-32b-awq"]


def member(name: str, context: int, kv: str) -> PlanInput:
    s = resolve_model(name, None, load_catalog())
    return PlanInput(s.arch, s.quant, RTX5090, context, 1, kv, 0.9, s.weights_bytes)


def run(*args: str) -> Result:
    return CliRunner().invoke(plan_command, [*GROUP, *args])


def test_awake_budget_is_the_card_minus_the_others_asleep_and_the_embedder() -> None:
    llama = member("llama-3.3-70b-iq2m", 8192, "fp8")
    qwen = member("qwen2.5-32b-awq", 16384, "auto")
    group = plan_group(GroupInput((llama, qwen), RTX5090, 64 * GIB))
    # Asleep, Llama keeps its CUDA context (0.5 GiB), CUDA graphs (0.25 + 80 layers x 0.01)
    # and non-torch buffers (0.3): 1.85 GiB; Qwen (64 layers) 0.5 + 0.89 + 0.3 = 1.69 GiB.
    assert asleep_bytes(llama) / GIB == pytest.approx(1.85, abs=1e-6)
    assert asleep_bytes(qwen) / GIB == pytest.approx(1.69, abs=1e-6)
    # The embedding engine: 0.05 x 32,607 MiB + its context = 1.59 + 0.5 GiB.
    assert group.beside_bytes == int(RTX5090.total_bytes * 0.05) + CUDA_CONTEXT_BYTES
    first, second = group.members
    # Llama awake: 31.84 - 2.09 - 1.69 (Qwen asleep) - 0.5 (own context) - 0.25 (margin)
    # = 27.31 GiB, which 0.85 of the card (27.07 GiB) fits and 0.86 (27.38) does not.
    assert first.awake_room_bytes == (
        RTX5090.total_bytes
        - group.beside_bytes
        - asleep_bytes(qwen)
        - CUDA_CONTEXT_BYTES
        - MARGIN_BYTES
    )
    assert first.awake_room_bytes / GIB == pytest.approx(27.31, abs=0.01)
    assert first.utilization == 0.85 and second.utilization == 0.85
    # Rounded down: the budget never exceeds the room.
    for m in group.members:
        assert m.plan.budget_bytes <= m.awake_room_bytes
        assert m.plan.budget_bytes + m.others_asleep_bytes + group.beside_bytes < (
            RTX5090.total_bytes
        )
    # 27.07 - 22.46 weights - 3.11 overhead = 1.50 GiB of fp8 KV: 9,792 tokens.
    assert first.plan.kv_tokens == 9_792 and first.plan.fits
    assert second.plan.kv_tokens == 28_688 and second.plan.fits
    # Level 1: both models' weights in host RAM during a switch, plus the 8 GiB reserve.
    assert group.host_weights_bytes == 24_120_000_000 + second.plan.weights.total_bytes
    assert group.host_needed_bytes / GIB == pytest.approx(48.47, abs=0.01)
    assert group.fits


def test_level_2_needs_no_host_ram_for_weights() -> None:
    llama = member("llama-3.3-70b-iq2m", 8192, "fp8")
    qwen = member("qwen2.5-32b-awq", 16384, "auto")
    group = plan_group(GroupInput((llama, qwen), RTX5090, 16 * GIB, sleep_level=2))
    assert group.host_weights_bytes == 0 and group.fits


def test_a_group_needs_two_models() -> None:
    with pytest.raises(ValueError, match="two models"):
        plan_group(GroupInput((member("qwen2.5-32b-awq", 8192, "auto"),), RTX5090, 64 * GIB))


def test_cli_prints_the_groups_plan() -> None:
    result = run("--context", "8192", "--context", "16384", "--kv-cache-dtype", "fp8",
                 "--kv-cache-dtype", "auto", "--host-ram", "64")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "--gpu-memory-utilization 0.85 = 27.07 GiB" in out
    assert "22.46 GiB + 18.00 GiB = 40.47 GiB" in out
    assert "48.47 GiB of 64.00 GiB" in out
    assert "FITS" in out and "DOES NOT FIT" not in out
    commands = [line.strip() for line in out.splitlines() if line.strip().startswith("vllm serve")]
    assert len(commands) == 2
    assert all(c.endswith("--enable-sleep-mode") for c in commands)
    assert "--max-model-len 8192" in commands[0] and "--kv-cache-dtype fp8" in commands[0]
    assert "--max-model-len 16384" in commands[1] and "kv-cache-dtype" not in commands[1]


def test_cli_refuses_a_box_without_the_ram_for_the_sleeping_weights() -> None:
    result = run("--context", "8192", "--kv-cache-dtype", "fp8", "--host-ram", "32")
    assert result.exit_code == 1
    assert "DOES NOT FIT" in result.output
    assert "48.47 GiB in all, but the box has 32.00 GiB" in result.output
    assert "Add RAM, use --sleep-level 2" in result.output
    # The same group fits that box at level 2.
    level2 = run("--context", "8192", "--kv-cache-dtype", "fp8", "--host-ram", "32",
                 "--sleep-level", "2")  # fmt: skip
    assert level2.exit_code == 0, level2.output


def test_cli_refuses_a_context_beyond_a_models_awake_budget_and_says_how_far() -> None:
    result = run("--context", "16384", "--host-ram", "64", "--json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["fits"] is False
    (refusal,) = out["refusals"]
    assert refusal.startswith("llama-3.3-70b: 16,384 tokens x 1 needs 5.00 GiB")
    assert "lower its context to 4,896 or less, use --kv-cache-dtype fp8" in refusal
    llama, qwen = out["members"]
    assert llama["vllm_args"] == []  # no command for a model that does not fit
    assert qwen["vllm_args"][-1] == "--enable-sleep-mode"
    assert qwen["vllm_env"] == {"VLLM_SERVER_DEV_MODE": "1"}


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--context", "8192"], "--host-ram"),  # a group needs the box's RAM
        (
            ["--context", "8192", "--context", "1024", "--context", "512", "--host-ram", "64"],
            "--context",
        ),
    ],
)
def test_cli_bad_group_input_exits_2(args: list[str], hint: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert hint in result.output


def test_host_ram_is_for_groups_only() -> None:
    result = CliRunner().invoke(
        plan_command,
        ["--gpu", "rtx5090", "--model", "qwen2.5-32b-awq", "--context", "8192", "--host-ram", "64"],
    )
    assert result.exit_code == 2 and "is for a group" in result.output
