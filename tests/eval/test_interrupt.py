"""Ctrl-C during `gateway eval` (a real process, a real SIGINT): the finished cases are
kept, printed as a partial table, stored marked interrupted; the exit code is 130."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.eval.conftest import ADMIN, CASES, EvalSetup


async def test_ctrl_c_keeps_finished_cases(eval_setup: EvalSetup) -> None:
    eval_setup.good.behaviour.first_delay = 0.3  # slow enough to interrupt mid-run
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "GATEWAY_ADMIN_KEY": ADMIN}
    env["GATEWAY_API_KEY"] = eval_setup.key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "eval", "--model", "good", "--cases", str(CASES),
        "--repeat", "4", "--concurrency", "1", "--no-speed", "--base-url", eval_setup.base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None and proc.stdout is not None
    seen = b""
    while b"8/32 cases" not in seen:  # a quarter done (not a terminal: a line per quarter)
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, (out, seen + err)
    assert b"interrupted: showing the cases that finished" in err
    overall = next(line for line in out.decode().splitlines() if line.startswith("overall"))
    done = int(overall.split("(")[1].split("/")[1].rstrip(")"))
    assert 8 <= done < 32
    assert "interrupted; the table counts finished cases only" in out.decode()
    async with eval_setup.gateway.client(headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        [run] = (await admin.get("/admin/evals")).json()["data"]
    assert run["interrupted"] is True
