"""The engine-group profiles, checked as compose builds them: the engines' flags are what
`gateway plan` prints for the group in `x-plan`, they start one at a time with a sleep in
between, and the gateway's group configuration names exactly those engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.plan.catalog import load_catalog
from gateway.plan.group import GroupInput, GroupPlan, plan_group
from gateway.plan.hardware import GIB, parse_gpu
from gateway.plan.planner import PlanInput
from gateway.plan.render_group import member_args
from gateway.plan.resolve import Subject, resolve_model
from gateway.upstream.switching.config import EngineGroup
from tests.deploy.compose import COMPOSE, PROFILES, ROOT, flag, is_group, load
from tests.deploy.project import Project
from tests.deploy.variations import Variation, example_env

GROUPS = [p for p in PROFILES if is_group(p)]


def group_plan(x_plan: dict[str, Any]) -> tuple[GroupPlan, list[Subject]]:
    gpu = parse_gpu(x_plan["gpu"])
    assert gpu is not None
    catalog = load_catalog()
    members, subjects = [], []
    for spec in x_plan["group"].values():
        subject = resolve_model(spec["model"], None, catalog)
        subjects.append(subject)
        members.append(
            PlanInput(
                subject.arch,
                subject.quant,
                gpu,
                spec["context"],
                spec["concurrency"],
                spec["kv_cache_dtype"],
                weights_bytes=subject.weights_bytes,
            )
        )
    inp = GroupInput(
        tuple(members),
        gpu,
        int(x_plan["host_ram_gib"] * GIB),
        sleep_level=x_plan["sleep_level"],
        beside_utilization=x_plan["beside_utilization"],
    )
    return plan_group(inp), subjects


def project(path: Path, tmp_path: Path) -> Project:
    variation = Variation(path.stem, files=(COMPOSE, path))
    return variation.load(example_env(tmp_path, variation))


def served(command: list[str]) -> str:
    return flag(command, "--served-model-name")


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: p.name)
def test_group_engines_run_what_the_planner_prints(path: Path, tmp_path: Path) -> None:
    x_plan = load(path)["x-plan"]
    group, subjects = group_plan(x_plan)
    assert group.fits, f"{path.name}: the planned group does not fit"
    services = project(path, tmp_path).services
    embed = services["embed"]["command"]
    assert float(flag(embed, "--gpu-memory-utilization")) == x_plan["beside_utilization"]
    cards = set()
    for name, member, subject in zip(x_plan["group"], group.members, subjects, strict=True):
        service = services[name]
        planned = member_args(member, subject)
        command = service["command"]
        assert command[: len(planned)] == planned, name
        assert command[len(planned)] == "--api-key" and command[-2:] == ["--port", "8000"]
        assert service["environment"]["VLLM_SERVER_DEV_MODE"] == "1"
        assert service["environment"]["HF_HUB_OFFLINE"] == "1"
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        cards.add(devices[0]["device_ids"][0])
    assert len(cards) == 1  # one card: that is the point of the group


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: p.name)
def test_engines_start_one_at_a_time_with_a_sleep_between(path: Path, tmp_path: Path) -> None:
    stack = project(path, tmp_path)
    first, *rest = load(path)["x-plan"]["group"]
    order = stack.order()
    # The first engine waits for the embedder (it sizes its memory with the embedder's share
    # taken), the one-shot waits for it, and each next engine waits for that sleep.
    assert stack.depends_on(first)["embed"]["condition"] == "service_healthy"
    sleeper = stack.services["vllm-sleep"]
    assert sleeper["restart"] == "no"
    assert sleeper["command"][:4] == [
        "gateway",
        "engines",
        "sleep",
        served(stack.services[first]["command"]),
    ]
    assert "--first-start" in sleeper["command"]
    assert stack.depends_on("vllm-sleep") == {first: {"condition": "service_healthy"}}
    for name in rest:
        assert stack.depends_on(name)["vllm-sleep"] == {
            "condition": "service_completed_successfully"
        }
        assert order.index(first) < order.index("vllm-sleep") < order.index(name)
    gateway = stack.depends_on("gateway")
    for name in rest:
        assert gateway[name]["condition"] == "service_healthy"


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: p.name)
def test_gateway_and_sleeper_read_the_same_group(path: Path, tmp_path: Path) -> None:
    stack = project(path, tmp_path)
    x_plan = load(path)["x-plan"]
    env = stack.services["gateway"]["environment"]
    raw = env["GATEWAY_ENGINE_GROUPS"]
    assert stack.services["vllm-sleep"]["environment"]["GATEWAY_ENGINE_GROUPS"] == raw
    (group,) = [EngineGroup.model_validate(g) for g in json.loads(raw)]
    assert group.max_awake == 1
    expected = [
        (f"http://{name}:8000", served(stack.services[name]["command"])) for name in x_plan["group"]
    ]
    assert [(e.url, e.model) for e in group.engines] == expected
    assert all(
        e.control == "sleep" and e.sleep_level == x_plan["sleep_level"] for e in group.engines
    )
    # Grouped engines are not plain upstreams too, and one worker switches them.
    assert env["GATEWAY_UPSTREAMS"] == "http://embed:8000"
    command = stack.services["gateway"]["command"]
    assert command[command.index("--workers") + 1] == "1"


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: p.name)
def test_deploy_readme_quotes_the_group_plan(path: Path) -> None:
    group, _ = group_plan(load(path)["x-plan"])
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert path.name in readme
    for member in group.members:
        assert f"--gpu-memory-utilization {member.utilization:g}" in readme
        assert f"{member.plan.kv_tokens:,} tokens" in readme
    assert f"{group.host_weights_bytes / GIB:.2f} GiB" in readme
    assert f"{group.host_needed_bytes / GIB:.2f} GiB" in readme
