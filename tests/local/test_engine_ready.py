"""Engine start, readiness and failure reports against a fake vLLM (a tiny HTTP server)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from gateway.local.engine import Engine, EngineSpec, free_port
from gateway.local.errors import EngineStartError
from gateway.local.process import group_members

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups via /proc")

# Stands in for the Python that would run `-m vllm...`: reads --port, then acts per FAKE_MODE.
FAKE_PYTHON = """\
#!{python}
import http.server, os, sys, time
argv = sys.argv[1:]
print("argv", " ".join(argv), flush=True)
print("offline", os.environ.get("HF_HUB_OFFLINE"), flush=True)
mode = os.environ["FAKE_MODE"]
if mode == "die":
    print("RuntimeError: boom", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(600)
time.sleep(float(os.environ.get("FAKE_DELAY", "0")))

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

port = int(argv[argv.index("--port") + 1])
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def make_engine(tmp_path: Path, fake_python: str, mode: str, delay: float = 0) -> Engine:
    spec = EngineSpec(model=tmp_path, served_name="tiny", port=free_port(), max_model_len=64)
    env = {**os.environ, "FAKE_MODE": mode, "FAKE_DELAY": str(delay)}
    return Engine(spec, tmp_path / "engine.log", python=fake_python, base_env=env)


def test_ready_engine_is_healthy_and_stops_cleanly(tmp_path: Path, fake_python: str) -> None:
    engine = make_engine(tmp_path, fake_python, "serve", delay=0.5)
    seen: list[tuple[float, str]] = []
    with engine:
        took = engine.wait_ready(
            timeout=20, on_progress=lambda *a: seen.append(a), progress_every_s=0.2
        )
        assert took >= 0.5
        assert engine.healthy()
        assert seen and seen[0][0] > 0
        pid = engine.process.pid
    assert pid is not None and group_members(pid) == []
    log = engine.log_path.read_text()
    assert f"--port {engine.spec.port}" in log and "--served-model-name tiny" in log
    assert "offline 1" in log


def test_an_engine_that_dies_fails_fast_with_its_log(tmp_path: Path, fake_python: str) -> None:
    engine = make_engine(tmp_path, fake_python, "die")
    engine.start()
    started = time.monotonic()
    with pytest.raises(EngineStartError) as caught:
        engine.wait_ready(timeout=60)
    engine.stop()
    assert time.monotonic() - started < 10
    assert "exited with code 3" in str(caught.value)
    assert "RuntimeError: boom" in str(caught.value)


def test_an_engine_that_never_answers_times_out(tmp_path: Path, fake_python: str) -> None:
    engine = make_engine(tmp_path, fake_python, "hang")
    with engine, pytest.raises(EngineStartError, match="not ready after 1 s"):
        engine.wait_ready(timeout=1)
    assert group_members(engine.process.pid or 0) == []
