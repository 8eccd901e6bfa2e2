"""Starting, watching and stopping the processes a benchmark runs against."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_command(port: int) -> list[str]:
    """`gateway serve --port P`, preferring the console script installed beside this Python."""
    script = Path(sys.executable).with_name("gateway")
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "gateway"]
    return [*prefix, "serve", "--host", "127.0.0.1", "--port", str(port)]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any GATEWAY_* setting (the run measures the defaults),
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env


class Service:
    """A child process with its output in a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, url: str, timeout_s: float = 30.0) -> None:
        """Poll `url` until it answers 200; fail with the log's tail if the process dies."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready at {url} ({last}):\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far (Linux /proc), None elsewhere."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            self._log.close()


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def tree_cpu_seconds(root: int | None) -> float | None:
    """CPU time of `root` and its children, living or reaped (a Postgres server and its
    backends), None elsewhere than Linux or without a root."""
    total = 0
    if root is None:
        return None
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root:  # its own time, and its reaped children's
            total += sum(int(f) for f in fields[11:15])
        elif ppid == root:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def machine_busy_seconds() -> float | None:
    """CPU time all cores spent not idle since boot (Linux /proc/stat), None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # minus idle and iowait


def machine_busy_pct(window_s: float = 1.0) -> float | None:
    """How busy all cores were over the next `window_s` (100 = one core), None if unknown."""
    before = machine_busy_seconds()
    time.sleep(window_s)
    after = machine_busy_seconds()
    if before is None or after is None:
        return None
    return (after - before) / window_s * 100


def wait_quiet(max_wait_s: float, threshold_pct: float = 25.0, quiet_s: int = 3) -> float | None:
    """Wait (up to `max_wait_s`) until other work on the machine stays below the threshold
    for `quiet_s` seconds in a row; returns the busiest of those last seconds."""
    deadline = time.monotonic() + max_wait_s
    recent: list[float] = []
    while True:
        busy = machine_busy_pct()
        if busy is None:
            return None
        recent = [*recent[-(quiet_s - 1) :], busy] if quiet_s > 1 else [busy]
        quiet = len(recent) == quiet_s and max(recent) <= threshold_pct
        if quiet or time.monotonic() >= deadline:
            return max(recent)
