"""Dockerfile.api and .dockerignore, read as text (no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose import ROOT
from tests.deploy.harness import shared_folder
from tests.deploy.image import (
    DOCKERFILE,
    Image,
    Stage,
    dockerignore_rules,
    ignored,
    parse_dockerfile,
)
from tests.deploy.sandbox import Sandbox

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "clang", "cargo", "rustc")


def _stages() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages()[1]


def test_multi_stage_with_pinned_slim_base(stages: list[Stage]) -> None:
    args, _ = _stages()
    assert len(stages) >= 2
    for stage in stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.base)
        repo, _, tag = base.rpartition(":")
        assert repo == "python" and "slim" in tag and tag != "latest", base
    final = stages[-1]
    assert any(c.startswith("--from=") for c in final.all("COPY")), "final stage copies the build"


def test_dependencies_are_built_in_the_build_stage(stages: list[Stage]) -> None:
    build = stages[0]
    assert any("pip install ." in run for run in build.all("RUN"))


def test_no_build_tools_in_the_final_image(stages: list[Stage]) -> None:
    final = stages[-1]
    for run in final.all("RUN"):
        assert "apt-get install" not in run and "pip install" not in run, run
        for tool in BUILD_TOOLS:
            assert not re.search(rf"\b{re.escape(tool)}\b", run), run


def test_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "final stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_healthcheck_probes_healthz(stages: list[Stage]) -> None:
    checks = stages[-1].all("HEALTHCHECK")
    assert len(checks) == 1
    assert "/healthz" in checks[0] and "8080" in checks[0]


def test_runs_gateway_serve(stages: list[Stage]) -> None:
    cmd = stages[-1].all("CMD")[-1]
    assert cmd.startswith('["gateway", "serve"')
    assert '"0.0.0.0"' in cmd and '"8080"' in cmd
    assert stages[-1].all("EXPOSE") == ["8080"]
    env = " ".join(stages[-1].all("ENV"))
    assert "GATEWAY_MODEL_CATALOG=/opt/gateway/catalog.yaml" in env


def test_dockerignore_keeps_secrets_out_and_sources_in(stages: list[Stage]) -> None:
    rules = dockerignore_rules()
    for secret in (".env", ".git/config", "tests/conftest.py", "deploy/README.md"):
        assert ignored(secret, rules), secret
    sources = [
        src
        for stage in stages
        for copy in stage.all("COPY")
        if not copy.startswith("--from=")
        for src in copy.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert not ignored(src.rstrip("/"), rules), src
        assert (ROOT / src).exists() or src == "README.md", src


def test_the_image_runs_its_commands_as_its_user(gateway_image: Image, tmp_path: Path) -> None:
    """The built environment, not the checkout: a module needing a dev-only package, or a
    package file left out of the wheel, fails here (the console and the migrations run in
    the rehearsal's `gateway` and `migrate` services)."""
    env = gateway_image.container_env({})
    run: dict[str, Any] = {"env": env, "user": gateway_image.user, "workdir": gateway_image.workdir}
    with Sandbox({"gateway": []}, shared_folder("gateway-image-run-")) as sandbox:

        def ok(*argv: str) -> str:
            code, out = sandbox.run("gateway", list(argv), mounts=gateway_image.mounts(), **run)
            assert code == 0, f"{argv}: {out}"
            return out

        assert ok("id", "-u").strip() == str(gateway_image.user[0]) != "0"
        assert "llama-3.3-70b-iq2m" in ok("gateway", "models", "list")
        plan = json.loads(
            ok(
                "gateway",
                "plan",
                "--model",
                "llama-3.3-70b-iq2m",
                "--gpu",
                "rtx5090",
                "--context",
                "16384",
                "--kv-cache-dtype",
                "fp8",
                "--json",
            )
        )
        assert plan["fits"] is True
        # Every module imports from the image's venv: nothing reaches for a dev dependency.
        modules = "gateway.app, gateway.ui.client, gateway.ingest_client.cli, gateway.cli"
        ok("python", "-c", f"import {modules}")
        assert "Usage: gateway serve" in ok("gateway", "serve", "--help")
