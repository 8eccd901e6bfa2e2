"""Dockerfile.api and .dockerignore, read as text (no Docker engine here)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import pytest

from tests.deploy.compose import ROOT

DOCKERFILE = ROOT / "Dockerfile.api"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "clang", "cargo", "rustc")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())  # join continuation lines
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


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


def _matches(path: str, pattern: str) -> bool:
    """A .dockerignore pattern against a context-relative path: it matches from the context
    root, also through a parent folder (excluding a folder excludes its content), and at any
    depth after a leading "**/"."""
    parts = path.split("/")
    if pattern.startswith("**/"):
        return any(_matches("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1))


def _ignored(path: str, rules: list[str]) -> bool:
    """The last matching rule wins, as in Docker."""
    ignored = False
    for rule in rules:
        if _matches(path, rule.lstrip("!").rstrip("/")):
            ignored = not rule.startswith("!")
    return ignored


def test_dockerignore_keeps_secrets_out_and_sources_in(stages: list[Stage]) -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", ".git/config", "tests/conftest.py", "deploy/README.md"):
        assert _ignored(secret, rules), secret
    sources = [
        src
        for stage in stages
        for copy in stage.all("COPY")
        if not copy.startswith("--from=")
        for src in copy.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert not _ignored(src.rstrip("/"), rules), src
        assert (ROOT / src).exists() or src == "README.md", src
