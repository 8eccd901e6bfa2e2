"""Checks `gateway up` makes before it starts anything, so a mistake costs a second, not
a minute of engine start-up: the port, the engine's installation, the upstreams given."""

from __future__ import annotations

import errno
import importlib.util
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from gateway.local.errors import LocalStackError
from gateway.local.stack import INSTALL_HINT

FindSpec = Callable[[str], Any]


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port held only by TIME_WAIT connections is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalStackError(
                    f"port {port} on {host} is already in use (another gateway? "
                    f"`ss -ltnp 'sport = :{port}'` shows which process). "
                    "Stop it or choose another port with --port."
                ) from None
            if exc.errno == errno.EACCES:
                raise LocalStackError(
                    f"no permission to listen on port {port}: use a port above 1023"
                ) from None
            raise LocalStackError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def check_engine_installed(find_spec: FindSpec = importlib.util.find_spec) -> None:
    # find_spec looks without importing: importing vLLM takes seconds and pulls in torch.
    missing = [name for name in ("vllm", "torch", "transformers") if find_spec(name) is None]
    if missing:
        raise LocalStackError(
            f"the local CPU engine is not installed ({', '.join(missing)} missing). "
            f"Install it with:\n  {INSTALL_HINT}\n"
            "or use an engine you already run: gateway up --upstream http://HOST:PORT"
        )


def served_models(base_url: str, timeout: float = 5.0, api_key: str | None = None) -> list[str]:
    """The model ids an OpenAI-compatible engine serves (its /v1/models)."""
    # http(s) only: `gateway up` checked the URL's scheme (parse_upstreams).
    request = urllib.request.Request(f"{base_url}/v1/models")  # noqa: S310
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        raise LocalStackError(
            f"upstream {base_url} answered {exc.code} to GET /v1/models"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LocalStackError(f"upstream {base_url} is not reachable: {reason}") from None
    except ValueError:
        raise LocalStackError(f"upstream {base_url}: /v1/models did not return JSON") from None
    try:
        return [str(entry["id"]) for entry in body["data"]]
    except (KeyError, TypeError):
        raise LocalStackError(
            f"upstream {base_url}: /v1/models is not an OpenAI model list"
        ) from None
