"""The process backend for real: the gateway starts and stops engine processes (here the
fake engine as its own process) so that at most one of the group runs at a time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import GatewayFactory
from tests.fakes.engine import free_port

ROOT = Path(__file__).resolve().parents[3]
CHAT = "/v1/chat/completions"


def engine(model: str, port: int, log: Path) -> dict[str, object]:
    return {
        "url": f"http://127.0.0.1:{port}",
        "model": model,
        "control": "process",
        "command": [
            sys.executable,
            "-m",
            "tests.deploy.fake_vllm",
            model,
            "--served-model-name",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        "env": {"PYTHONPATH": str(ROOT)},
        "log_file": str(log),
    }


def running(model: str) -> list[int]:
    """Pids of live engine processes serving `model`, read from /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"tests.deploy.fake_vllm" in argv and model.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def test_processes_are_switched_one_at_a_time(
    gateway_factory: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One of the gateway's own settings, in its environment: not the engines' business.
    monkeypatch.setenv("GATEWAY_SPOOL_DIR", str(tmp_path))
    models = ["proc-a", "proc-b"]
    group = {
        "name": "cpu",
        "min_residency_s": 0,
        "switch_timeout_s": 60,
        "engines": [engine(m, free_port(), tmp_path / f"{m}.log") for m in models],
    }
    gateway = await gateway_factory(engine_groups=[group], upstream_api_key="sk-engines")
    both: list[tuple[list[int], list[int]]] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            a, b = running("proc-a"), running("proc-b")
            if a and b:
                both.append((a, b))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        assert running("proc-a") == [] and running("proc-b") == []  # nothing until asked
        async with gateway.client(timeout=60) as client:
            for i in range(4):
                model = models[i % 2]
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
                response = await client.post(CHAT, json=body)
                assert response.status_code == 200, response.text
                assert response.json()["model"] == model
                assert int(response.headers["x-gateway-switch-wait-ms"]) > 0
                assert running(model) and not running(models[1 - i % 2])
            # The engine requires the gateway's key, and sees none of the gateway's settings.
            env = environ(running("proc-b")[0])
            assert env["VLLM_API_KEY"] == "sk-engines" and "GATEWAY_SPOOL_DIR" not in env
            # The running engine dies on its own: the next request starts it again.
            (pid,) = running("proc-b")
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):  # noticed within a second or so (the watch runs every 0.5 s)
                listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
                if listed["proc-b"]["status"] == "asleep":
                    break
                await asyncio.sleep(0.1)
            assert listed["proc-b"]["status"] == "asleep"
            body = {"model": "proc-b", "messages": [{"role": "user", "content": "hi"}]}
            response = await client.post(CHAT, json=body)
            assert response.status_code == 200, response.text
            assert running("proc-b") not in ([], [pid])
    finally:
        stop.set()
        await watcher
    assert both == []
    # Stopping the gateway stops the engine it started.
    gateway.server.should_exit = True
    await gateway.task
    assert running("proc-a") == [] and running("proc-b") == []
