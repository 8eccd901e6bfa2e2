"""docker-compose.yml and its overrides, checked as files (see compose.py for why)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.plan import planner
from gateway.plan.catalog import load_catalog
from gateway.plan.hardware import parse_gpu
from gateway.plan.planner import Plan, PlanInput
from gateway.plan.render import vllm_args
from gateway.plan.resolve import Subject, resolve_model
from tests.deploy.compose import (
    COMPOSE,
    PROFILES,
    ROOT,
    SCALE_OUT,
    flag,
    is_group,
    load,
    variables,
)

ENGINES = ("vllm", "embed")
# One chat engine, planned alone; the group profiles are checked in test_group_profile.py.
SINGLE = [p for p in (COMPOSE, *PROFILES) if not is_group(p)]
LONG_RUNNING = ("vllm", "embed", "postgres", "gateway", "redis", "prometheus", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def test_vllm_image_is_pinned_to_a_blackwell_release(services: dict[str, Any]) -> None:
    for name in ENGINES:
        match = re.fullmatch(r"vllm/vllm-openai:v(\d+)\.(\d+)\.(\d+)", services[name]["image"])
        assert match, services[name]["image"]
        version = tuple(int(p) for p in match.groups())
        # Images carry sm_120 (RTX 50xx) kernels from the CUDA 12.8 builds of 0.9.x on; the
        # gateway relies on >= 0.12 behaviour; GGUF left the tree (for a plugin) in 0.24.
        assert (0, 12, 0) <= version < (0, 24, 0)


def test_every_image_has_a_fixed_tag(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image}"


def test_engines_reserve_the_gpu_and_stay_internal(services: dict[str, Any]) -> None:
    for name in ENGINES:
        service = services[name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert "ports" not in service, f"{name} must not publish its port"
        assert service["expose"] == ["8000"]
        assert "models:/models:ro" in service["volumes"]
        assert service["environment"]["HF_HUB_OFFLINE"] == "1"


def test_engines_require_the_shared_api_key(services: dict[str, Any]) -> None:
    gateway_key = services["gateway"]["environment"]["GATEWAY_UPSTREAM_API_KEY"]
    assert gateway_key.startswith("${VLLM_API_KEY:?")
    for name in ENGINES:
        assert flag(services[name]["command"], "--api-key").startswith("${VLLM_API_KEY")


def test_healthchecks_and_restart_policies(services: dict[str, Any]) -> None:
    for name in ENGINES:
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "/health'" in probe and "8000" in probe
        assert services[name]["healthcheck"]["start_period"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("redis", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name


def test_gateway_waits_for_healthy_dependencies(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert gateway["build"]["dockerfile"] == "Dockerfile.api"
    depends = gateway["depends_on"]
    for name in ("postgres", "vllm", "embed"):
        assert depends[name]["condition"] == "service_healthy", name
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    # Workers (and scale-out replicas) share limits through Redis: it is part of the stack.
    assert depends["redis"] == {"condition": "service_healthy"}
    assert gateway["ports"] == ["${GATEWAY_BIND:-0.0.0.0}:${GATEWAY_PORT:-8080}:8080"]
    assert "gateway" in gateway["command"] and "serve" in gateway["command"]
    # Engines start one at a time: each sizes its KV cache from the free memory it sees.
    assert services["vllm"]["depends_on"]["embed"]["condition"] == "service_healthy"


def test_gateway_is_wired_to_the_engines(services: dict[str, Any]) -> None:
    env = services["gateway"]["environment"]
    upstreams = env["GATEWAY_UPSTREAMS"].split(",")
    assert upstreams == ["http://vllm:8000", "http://embed:8000"]
    assert env["GATEWAY_EMBEDDING_MODEL"] == flag(
        services["embed"]["command"], "--served-model-name"
    )
    # The password goes as libpq's PGPASSWORD: a URL would break on `@`, `/` or `#` in it.
    assert env["GATEWAY_DATABASE_URL"] == "postgresql://gateway@postgres:5432/gateway"
    assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert env["GATEWAY_ADMIN_KEY"].startswith("${GATEWAY_ADMIN_KEY")
    assert env["GATEWAY_REDIS_URL"] == "redis://redis:6379/0"


def test_data_lives_on_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert {
        "models",
        "vllm-cache",
        "pgdata",
        "redis-data",
        "prometheus-data",
        "grafana-data",
    } <= set(compose["volumes"])
    # PostgreSQL 18 images keep their data under /var/lib/postgresql/18/docker.
    assert "pgdata:/var/lib/postgresql" in services["postgres"]["volumes"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")


def test_optional_profiles(services: dict[str, Any]) -> None:
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert services["models"]["profiles"] == ["tools"]
    for name in ("vllm", "embed", "postgres", "gateway", "migrate", "redis"):
        assert "profiles" not in services[name], name


def test_served_models_come_from_the_catalog(services: dict[str, Any]) -> None:
    catalog = load_catalog()
    for name in ENGINES:
        path = services[name]["command"][0]
        model = path.removeprefix("/models/").split("/")[0]
        assert model in catalog.models, path


def test_secrets_come_from_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, re.MULTILINE))
    for path in (COMPOSE, SCALE_OUT, *PROFILES):
        missing = variables(path) - documented
        assert not missing, f"{path.name} uses {missing} that .env.example does not list"
    # and nothing in .env.example carries a real value for a secret
    for key in ("POSTGRES_PASSWORD", "GATEWAY_ADMIN_KEY", "VLLM_API_KEY", "HF_TOKEN"):
        assert re.search(rf"^{key}=$", example, re.MULTILINE), key


def test_bind_mounted_files_exist() -> None:
    for path in (COMPOSE, SCALE_OUT):
        for service in load(path)["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (ROOT / source).exists(), source


def _plan(x_plan: dict[str, Any]) -> tuple[Plan, Subject]:
    subject = resolve_model(x_plan["model"], None, load_catalog())
    gpu = parse_gpu(x_plan["gpu"])
    assert gpu is not None
    plan = planner.plan(
        PlanInput(
            subject.arch,
            subject.quant,
            gpu,
            x_plan["context"],
            x_plan["concurrency"],
            x_plan["kv_cache_dtype"],
            x_plan["gpu_memory_utilization"],
            subject.weights_bytes,
        )
    )
    assert plan.fits or plan.cpu_offload_gib, f"{x_plan['model']} does not fit as planned"
    return plan, subject


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: Path(p).name)
def test_vllm_flags_are_what_the_planner_prints(path: Path) -> None:
    data = load(path)
    command = data["services"]["vllm"]["command"]
    plan, subject = _plan(data["x-plan"])
    planned = vllm_args(plan, subject.target)
    assert command[: len(planned)] == planned
    rest = command[len(planned) :]
    assert rest[0] == "--api-key" and rest[1].startswith("${VLLM_API_KEY")
    assert rest[2:] == ["--port", "8000"]


def test_profiles_cover_the_three_rtx5090_setups() -> None:
    plans = {p.name: load(p)["x-plan"] for p in PROFILES if not is_group(p)}
    plans["docker-compose.yml"] = load(COMPOSE)["x-plan"]
    assert plans["docker-compose.yml"]["model"] == "llama-3.3-70b-iq2m"  # (a) 70B, whole
    assert (
        "--cpu-offload-gb"
        in load(ROOT / "deploy/profiles/70b-awq-offload.yml")["services"]["vllm"]["command"]
    )  # (b)
    assert plans["32b-awq.yml"]["model"] == "qwen2.5-32b-awq"  # (c)
    assert all(p["gpu"] == "rtx5090" for p in plans.values())


def test_scale_out_override(services: dict[str, Any]) -> None:
    override = load(SCALE_OUT)["services"]
    gateway = override["gateway"]
    assert gateway["deploy"]["replicas"] > 1
    assert gateway["ports"] == []  # !reset: nginx publishes the port instead
    assert "http://vllm-2:8000" in gateway["environment"]["GATEWAY_UPSTREAMS"].split(",")
    second = override["vllm-2"]
    assert second["image"] == services["vllm"]["image"]
    assert "ports" not in second
    assert second["command"][1:] == services["vllm"]["command"][1:]
    assert second["command"][0] == services["vllm"]["command"][0]
    device = second["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
    assert (
        device
        != services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
    )
    assert override["lb"]["ports"] == services["gateway"]["ports"]
    conf = (ROOT / "deploy/nginx/gateway.conf").read_text()
    assert "proxy_buffering off" in conf and "resolver 127.0.0.11" in conf


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: Path(p).name)
def test_deploy_readme_quotes_the_planner(path: Path) -> None:
    plan, _ = _plan(load(path)["x-plan"])
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert f"{plan.weights.total_bytes / 2**30:.2f} GiB" in readme
    assert f"{plan.kv_bytes_per_token:,} B" in readme
    assert f"{plan.overhead.total_bytes / 2**30:.2f} GiB" in readme
    if plan.fits:
        assert f"{plan.kv_tokens:,} tokens" in readme
    else:
        assert f"{plan.cpu_offload_gib} GiB" in readme
