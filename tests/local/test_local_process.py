"""ChildProcess with real (tiny) process trees: the whole group goes, nothing is orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.local.process import ChildProcess, group_members, read_tail

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups via /proc")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


# A leader that starts a grandchild (optionally deaf to SIGTERM), says both pids, and waits.
TREE = """
    import signal, subprocess, sys, time
    deaf = sys.argv[1] == "deaf"
    child = "import signal, time\\n"
    if deaf:
        child += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    child += "print('grandchild up', flush=True)\\ntime.sleep(600)"
    sub = subprocess.Popen([sys.executable, "-c", child])
    print("pids", sub.pid, flush=True)
    if sys.argv[2] == "leave":
        sys.exit(0)
    time.sleep(600)
"""


def start_tree(tmp_path: Path, deaf: bool, leave: bool) -> ChildProcess:
    argv = [*python(TREE), "deaf" if deaf else "polite", "leave" if leave else "stay"]
    child = ChildProcess(argv, env=dict(os.environ), log_path=tmp_path / "tree.log")
    child.start()
    wait_for(lambda: "grandchild up" in read_tail(child.log_path))
    return child


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_stop_ends_the_whole_tree(tmp_path: Path) -> None:
    child = start_tree(tmp_path, deaf=False, leave=False)
    assert child.pid is not None
    assert len(group_members(child.pid)) == 2
    child.stop(grace=5)
    assert group_members(child.pid) == []
    assert not child.running


def test_a_member_deaf_to_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    child = start_tree(tmp_path, deaf=True, leave=False)
    started = time.monotonic()
    child.stop(grace=0.5)
    assert group_members(child.pid or 0) == []
    assert time.monotonic() - started < 5


def test_members_left_behind_by_an_exited_leader_are_stopped(tmp_path: Path) -> None:
    child = start_tree(tmp_path, deaf=False, leave=True)
    wait_for(lambda: not child.running)
    assert len(group_members(child.pid or 0)) == 1  # the orphaned grandchild
    child.stop(grace=5)
    assert group_members(child.pid or 0) == []


def test_output_goes_to_the_log_and_its_tail_is_readable(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(100): print('line', i)\nsys.stderr.write('err\\n')"
    child = ChildProcess(python(code), env=dict(os.environ), log_path=tmp_path / "x.log")
    child.start()
    wait_for(lambda: not child.running)
    assert child.log_tail(2).splitlines() == ["line 99", "err"]
    child.stop()


def test_rss_counts_the_tree(tmp_path: Path) -> None:
    child = start_tree(tmp_path, deaf=False, leave=False)
    try:
        assert child.rss_bytes() > 2 * 5_000_000  # two Python interpreters
    finally:
        child.stop()


def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    # A parent that starts a ChildProcess and is then SIGKILLed: no chance to clean up.
    log = tmp_path / "orphan.log"
    parent_code = f"""
        import os, sys, time
        from pathlib import Path
        from gateway.local.process import ChildProcess
        child = ChildProcess(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            env=dict(os.environ), log_path=Path({str(log)!r}),
        )
        child.start()
        print(child.pid, flush=True)
        time.sleep(600)
    """
    parent = subprocess.Popen(python(parent_code), stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_for(lambda: group_members(child_pid) == [])
