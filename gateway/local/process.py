"""A supervised child process tree: its own process group, output to a log, clean stop.

vLLM is a tree, not a process: the API server forks an engine core, which forks a worker,
plus a multiprocessing resource tracker. Signalling only the child we started would orphan
the rest (holding gigabytes and the port), so the child starts a new session and every stop
signals the whole group, then waits until no live member is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class ChildProcess:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        die_with_parent: bool = True,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        # Linux only: the kernel sends SIGTERM to the child when the thread that started
        # it exits, so a crashed (or SIGKILLed) parent does not leave engines behind.
        # Start it from a long-lived thread (the main thread, or the event loop's).
        self.die_with_parent = die_with_parent and sys.platform == "linux"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, whose id is its pid
                preexec_fn=_parent_death_signal() if self.die_with_parent else None,
            )

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the group; SIGKILL what is left after `grace` seconds; reap the child."""
        proc = self._proc
        if proc is None:
            return
        group = proc.pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap our child as soon as it exits, or it counts as alive forever
            if not group_members(group):
                break
            time.sleep(0.1)
        else:
            _log.warning("process group %d ignored SIGTERM for %.0f s: killing it", group, grace)
            _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        # Grandchildren are reparented to init, which reaps them; wait until it has.
        deadline = time.monotonic() + 10
        while group_members(group) and time.monotonic() < deadline:
            _signal_group(group, signal.SIGKILL)
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        return read_tail(self.log_path, lines)

    def rss_bytes(self) -> int:
        """Resident memory of the whole tree (the group), summed."""
        return sum(_rss(pid) for pid in group_members(self.pid)) if self.pid else 0


def read_tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group still exists
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [group]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)


def _parent_death_signal() -> Callable[[], None]:
    # Resolved before fork: between fork and exec the child should only make the syscall.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return set_signal
