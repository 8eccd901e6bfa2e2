"""`gateway up` as a user runs it: a subprocess, its printed URL and key used with the openai
SDK, then Ctrl-C or SIGTERM, after which no process of the stack may be left.

A stack's processes are found by a marker in their environment, which every child inherits
(vLLM's workers and Postgres's backends included, whose command lines name nothing of ours),
and, as a second net, by the data dir or an engine's port on their command line.

Only the first run starts engines (~60 s on two cores, beside the session's engines, which
are idle by then). The second run, on the same data dir, proves that the key and database
are reused and points `--upstream` at the session's engines instead of paying that minute
again; interrupting a start-up costs a few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from gateway.local.engine import Engine, free_port

START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120
MARKER = "GATEWAY_UP_TEST_RUN"
ROOT = Path(__file__).resolve().parents[2]


class UpRun:
    def __init__(
        self, data_dir: Path, port: int, *args: str, cache: Path, make: bool = False
    ) -> None:
        self.marker = uuid.uuid4().hex
        self.data_dir = data_dir
        env = {**os.environ, MARKER: self.marker, "PYTHONUNBUFFERED": "1"}
        if make:
            # The README's first command, `make up`: its options come from the environment.
            argv = ["make", "--no-print-directory", "up", f"PYTHON={sys.executable}"]
            env.update(
                GATEWAY_DATA_DIR=str(data_dir),
                GATEWAY_PORT=str(port),
                GATEWAY_MODEL_CACHE=str(cache),
            )
        else:
            argv = [sys.executable, "-m", "gateway", "up", "--data-dir", str(data_dir)]
            argv += ["--port", str(port), "--model-cache", str(cache), *args]
        # Its own process group, as a terminal's foreground job: Ctrl-C reaches all of it.
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"gateway up exited with {self.proc.returncode}:\n{self.output}")
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} after {timeout} s:\n{self.output}")

    def wait_ready(self) -> tuple[str, str]:
        url = self.wait_for(r"Base URL:\s+(\S+)", START_TIMEOUT_S).group(1)
        key = self.wait_for(r"API key:\s+(sk-gw-\S+)", 5).group(1)
        return url, key

    def engine_ports(self) -> list[int]:
        return [
            int(port) for port in re.findall(r"starting vLLM for \S+ on port (\d+)", self.output)
        ]

    def stop(self, sig: signal.Signals) -> int:
        """The signal as a terminal sends it, to the whole foreground process group."""
        os.killpg(self.proc.pid, sig)
        return self.wait_exit()

    def wait_exit(self) -> int:
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"gateway up did not stop within {STOP_TIMEOUT_S} s:\n{self.output}")
        self._reader.join(5)
        return code

    def leftovers(self) -> list[str]:
        """Live processes of this stack (not counting `gateway up` itself)."""
        ports = [f"--port\0{port}\0".encode() for port in self.engine_ports()]
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.proc.pid:
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # gone while we looked
            ours = f"{MARKER}={self.marker}".encode() in environ
            ours = ours or str(self.data_dir).encode() in cmdline
            ours = ours or any(port in cmdline + b"\0" for port in ports)
            if ours and state not in ("Z", "X"):
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {command[:120]}")
        return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's 0700 folders: run as root, pgserver runs Postgres as its own user,
    # which must be able to reach the folder.
    root = Path(tempfile.mkdtemp(prefix="gateway-up-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def ask(url: str, key: str, chat_model: str, embedding_model: str) -> None:
    with OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120) as client:
        reply = client.chat.completions.create(
            model=chat_model,
            messages=[{"role": "user", "content": "Name one colour."}],
            max_tokens=8,
        )
        assert reply.choices[0].message.content
        vectors = client.embeddings.create(model=embedding_model, input=["hello", "world"])
        assert [len(item.embedding) for item in vectors.data] == [384, 384]


def test_up_then_ctrl_c_then_up_again_with_the_same_key(
    data_dir: Path, model_cache: Path, chat_engine: Engine, embedding_engine: Engine
) -> None:
    first = UpRun(data_dir, free_port(), cache=model_cache, make=True)
    try:
        url, key = first.wait_ready()
        assert "API key created" in first.output
        assert "converting" not in first.output  # the session already converted the model
        # Through the OpenAI names the stack aliases.
        ask(url, key, "gpt-4o-mini", "text-embedding-3-small")
        running = first.leftovers()
        assert len(running) >= 5, running  # the scan sees the stack: Postgres, 2 engines, gateway
    finally:
        code = first.stop(signal.SIGINT)
    # `gateway up` exits 130 on Ctrl-C; make then reports the interrupt and dies of it.
    assert code in (130, -signal.SIGINT, 2), first.output
    assert re.search(r"\] stopped$", first.output, re.MULTILINE), first.output
    assert first.leftovers() == []

    upstreams = ["--upstream", chat_engine.base_url, "--upstream", embedding_engine.base_url]
    second = UpRun(data_dir, free_port(), *upstreams, cache=model_cache)
    try:
        url_again, key_again = second.wait_ready()
        assert key_again == key
        assert "API key reused" in second.output
        ask(url_again, key_again, chat_engine.model, embedding_engine.model)
    finally:
        code = second.stop(signal.SIGTERM)
    assert code == 0, second.output
    assert second.leftovers() == []
    assert chat_engine.healthy()  # --upstream engines are not ours to stop


def test_ctrl_c_while_engines_start_leaves_nothing(data_dir: Path, model_cache: Path) -> None:
    run = UpRun(data_dir, free_port(), cache=model_cache)
    try:
        run.wait_for(r"starting vLLM for all-minilm-l6-v2", 120)
        time.sleep(3)  # vLLM is importing torch and forking its workers now
        assert run.leftovers()
    finally:
        code = run.stop(signal.SIGINT)
    assert code == 130, run.output
    assert run.leftovers() == []


def test_unreachable_upstream_is_named_and_postgres_stopped(
    data_dir: Path, model_cache: Path
) -> None:
    closed = free_port()
    run = UpRun(
        data_dir, free_port(), "--upstream", f"http://127.0.0.1:{closed}", cache=model_cache
    )
    code = run.wait_exit()
    assert code == 1, run.output
    assert f"upstream http://127.0.0.1:{closed} is not reachable" in run.output
    assert "postgres ready" in run.output and run.output.count("stopped") == 1
    assert run.leftovers() == []
