"""A real `gateway serve` process for tests that must see what a user's process does: its
memory (from /proc), its exit, its log. Slower to start than the in-process gateway of
`tests/conftest.py`; use it where the process itself is what the test is about."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.engine import free_port


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children (workers), from /proc."""
        total = 0
        for pid in (self.proc.pid, *_children(self.proc.pid)):
            total += _rss(pid)
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        return self.proc.returncode


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        for child in text.split():
            found.append(int(child))
            found.extend(_children(int(child)))
    return found


async def start_gateway_process(
    env: Mapping[str, str], log_dir: Path, *, ready_path: str = "/healthz", timeout: float = 30
) -> GatewayProcess:
    """`python -m gateway serve` with `env` on top of this process's environment, on a
    free port; returns once `ready_path` answers 200."""
    port = free_port()
    full = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_LOG_FORMAT": "console",
        "GATEWAY_HEALTH_INTERVAL_S": "0.2",
        **env,
    }
    log_path = log_dir / f"gateway-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gw = GatewayProcess(proc, f"http://127.0.0.1:{port}", log_path, full)
    async with httpx.AsyncClient(base_url=gw.url, timeout=2) as client:
        for _ in range(int(timeout / 0.1)):
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}:\n{gw.log()}")
            try:
                if (await client.get(ready_path)).status_code == 200:
                    return gw
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    await gw.stop(signal.SIGKILL)
    raise RuntimeError(f"gateway not ready on {ready_path} after {timeout} s:\n{gw.log()}")


ProcessFactory = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def gateway_process(tmp_path: Path) -> AsyncIterator[ProcessFactory]:
    """Start real gateway processes; each is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[GatewayProcess] = []

    async def make(env: Mapping[str, str], **kwargs: object) -> GatewayProcess:
        gw = await start_gateway_process(env, tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.stop()
