"""Fixtures for the compose rehearsal (registered for every test folder by tests/conftest.py,
since the real-engine suite rehearses too): the image built once per session, and a
rehearsal of any documented variation with its `.env` written by the documented command."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing_prerequisite
from tests.deploy.compose import ROOT
from tests.deploy.image import Image, build_image
from tests.deploy.rehearsal import Rehearsal
from tests.deploy.sandbox import missing_tools
from tests.deploy.variations import Variation, with_edits


def shared_folder(prefix: str) -> Path:
    """A folder the image's user and Postgres' user can reach (pytest's are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="session")
def gateway_image() -> Iterator[Image]:
    """Dockerfile.api, built as `docker compose build` would (see image.py)."""
    why = missing_tools()
    if why:
        missing_prerequisite(f"the compose rehearsal cannot run here: {why}")
    folder = shared_folder("gateway-image-")
    try:
        image = build_image(folder)
        # A bind mount needs its mount point: create the image's top-level folders that this
        # machine lacks (/models), empty, for the session only.
        created = []
        for entry in image.root.iterdir():
            target = Path("/") / entry.name
            if not target.exists():
                target.mkdir()
                created.append(target)
        yield image
        for target in created:
            with contextlib.suppress(OSError):
                target.rmdir()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_env_file(folder: Path, edits: dict[str, str]) -> Path:
    """`.env` the way the README says: `python3 -m gateway.deploy.init` in a checkout, here
    one holding only .env.example and the modules it may import, run by a bare interpreter
    (no site-packages, no PYTHON* variables: it must need nothing installed), then the
    user's documented edits."""
    shutil.copy(ROOT / ".env.example", folder / ".env.example")
    (folder / "gateway").mkdir()
    shutil.copy(ROOT / "gateway" / "__init__.py", folder / "gateway" / "__init__.py")
    shutil.copytree(ROOT / "gateway" / "deploy", folder / "gateway" / "deploy")
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-m", "gateway.deploy.init"],
        cwd=folder,
        env={},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    env = folder / ".env"
    env.write_text(with_edits(env.read_text(), edits))
    return env


Rehearse = Callable[..., contextlib.AbstractContextManager[Rehearsal]]


@pytest.fixture
def rehearse(gateway_image: Image) -> Iterator[Rehearse]:
    folders: list[Path] = []

    @contextlib.contextmanager
    def run(
        variation: Variation, targets: tuple[str, ...] = (), **kwargs: Any
    ) -> Iterator[Rehearsal]:
        folder = shared_folder("gateway-rehearsal-")
        folders.append(folder)
        env_file = write_env_file(folder, dict(variation.env))
        project = variation.load(env_file, targets)
        with Rehearsal(project, gateway_image, folder, **kwargs) as rehearsal:
            yield rehearsal

    yield run
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


# -- what the user does once the stack is up (README: docker compose) ---------------


def first_key(rehearsal: Rehearsal, **flags: str) -> str:
    """The README's first user key: `docker compose exec gateway gateway keys create ...`."""
    argv = ["gateway", "keys", "create", "--name", "alice"]
    for flag, value in flags.items():
        argv += [f"--{flag}", value]
    code, out = rehearsal.exec("gateway", argv)
    assert code == 0, out
    found = re.search(r"sk-gw-[A-Za-z0-9_-]+", out)
    assert found, out
    return found.group()


def base_url(rehearsal: Rehearsal) -> str:
    """Where the user reaches the gateway: the published port of `gateway` (or `lb`)."""
    for service in ("lb", "gateway"):
        spec = rehearsal.project.services.get(service)
        if spec and spec.get("ports"):
            host_ip, published, _ = spec["ports"][0].rsplit(":", 2)
            host = "127.0.0.1" if host_ip == "0.0.0.0" else host_ip
            return f"http://{host}:{published}/v1"
    raise AssertionError("no published port for the gateway")


def chat_model(rehearsal: Rehearsal) -> str:
    command = rehearsal.command("vllm")
    return command[command.index("--served-model-name") + 1]


def sdk_chat(rehearsal: Rehearsal, key: str) -> dict[str, Any]:
    argv = ["python", "-m", "tests.deploy.client", base_url(rehearsal), key, chat_model(rehearsal)]
    code, out = rehearsal.host(argv)
    assert code == 0, out
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]
