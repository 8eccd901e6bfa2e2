"""`gateway up --chat-group`: two chat engines in one engine group, which the gateway itself
starts and stops (the `process` control: vLLM's sleep mode needs CUDA), one at a time.

Both serve the local chat model, under two names, so a laptop shows what a GPU box does
with two models on one card: a request for the stopped one waits while the other stops and
it starts. Pure: the group's configuration as the gateway reads it (GATEWAY_ENGINE_GROUPS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.local.engine import EngineSpec, build_argv, build_env
from gateway.local.models import LocalModel

GROUP_NAME = "local-chat"
SECOND_SUFFIX = "-b"
# On the CPU a switch is a whole engine start (a minute or two on two cores): keep the
# woken engine long enough to be worth it, and let waiters wait that long.
MIN_RESIDENCY_S = 30.0
SWITCH_TIMEOUT_S = 600.0


def chat_group_names(chat: LocalModel) -> list[str]:
    return [chat.name, chat.name + SECOND_SUFFIX]


def chat_group(
    chat: LocalModel,
    *,
    ports: Sequence[int],
    logs: Sequence[Path],
    cpus: str,
    max_model_len: int,
    min_residency_s: float = MIN_RESIDENCY_S,
) -> dict[str, Any]:
    """The group, with each engine's vLLM command line and environment. No key in it: the
    gateway gives the engines it starts its own upstream key (VLLM_API_KEY)."""
    engines = []
    for name, port, log in zip(chat_group_names(chat), ports, logs, strict=True):
        spec = EngineSpec(
            model=chat.path,
            served_name=name,
            port=port,
            max_model_len=max_model_len,
            extra_env={"VLLM_CPU_OMP_THREADS_BIND": cpus},
        )
        engines.append(
            {
                "url": spec.base_url,
                "model": name,
                "control": "process",
                "command": build_argv(spec),
                "env": build_env(spec, {}),
                "log_file": str(log),
            }
        )
    return {
        "name": GROUP_NAME,
        "max_awake": 1,
        "min_residency_s": min_residency_s,
        "switch_timeout_s": SWITCH_TIMEOUT_S,
        "drain_timeout_s": 120.0,
        "engines": engines,
    }
