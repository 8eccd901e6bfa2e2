"""Start the stack in order, watch it, and stop it in reverse: gateway, engines, Postgres.

Every child runs in its own session (ChildProcess; Postgres through pg_ctl), so Ctrl-C at
the terminal reaches only us, and we decide the order: the gateway first (it flushes usage
to Postgres and stops sending work to the engines), then the engines, then Postgres.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.config import Settings
from gateway.local.chat_group import chat_group
from gateway.local.checks import check_engine_installed, check_port_free, served_models
from gateway.local.console import Console
from gateway.local.datadir import DataDir, admin_key, engine_key, exclusive
from gateway.local.engine import Engine, EngineSpec, free_port, split_cpus
from gateway.local.errors import LocalStackError
from gateway.local.localkey import ensure_local_key, migrate
from gateway.local.models import prepare_chat_model, prepare_embedding_model
from gateway.local.postgres import EmbeddedPostgres
from gateway.local.process import ChildProcess
from gateway.local.signals import Signals, Stop, exit_code
from gateway.local.stack import (
    CHAT_MAX_MODEL_LEN,
    STACK_ENV,
    UpOptions,
    client_host,
    embedding_only,
    engine_hints,
    engine_specs,
    example_model,
    gateway_argv,
    gateway_env,
    log_gist,
    ready_text,
)

GATEWAY_READY_TIMEOUT_S = 90.0
# uvicorn drains requests for up to GATEWAY_SHUTDOWN_TIMEOUT_S, then the usage writer
# flushes (its own deadline is 10 s): give it that before SIGKILL.
GATEWAY_FLUSH_GRACE_S = 10.0
ENGINE_GRACE_S = 20.0


class Stack:
    def __init__(self, options: UpOptions, console: Console, signals: Signals) -> None:
        self.options = options
        self.console = console
        self.signals = signals
        self.data = DataDir(options.data_dir.expanduser().resolve())
        self.postgres: EmbeddedPostgres | None = None
        self.engines: list[Engine] = []
        self.gateway: ChildProcess | None = None
        self.base_env = {**os.environ, STACK_ENV: str(self.data.root)}

    def run(self) -> int:
        """Run until a signal (exit code 130 or 0) or a failure (LocalStackError, raised
        after everything was stopped)."""
        with exclusive(self.data):
            try:
                self._start()
                self._watch()
            except Stop:
                pass
            finally:
                self.signals.stopping()
                self._stop_all()
        return exit_code(self.signals.received)

    # -- start ------------------------------------------------------------------------------

    def _start(self) -> None:
        options, data, step = self.options, self.data, self.console.step
        step(f"data in {data.root}")
        check_port_free(options.host, options.port)
        if options.local_engines:
            check_engine_installed()
        admin = admin_key(data)

        self.postgres = EmbeddedPostgres(data.postgres)
        with self.signals.deferred(), _marked_environ(STACK_ENV, str(data.root)):
            database_url = self.postgres.start()
        step("postgres ready")
        migrate(database_url)
        api_key, created = ensure_local_key(database_url, data)
        step(f"database migrated; API key {'created' if created else 'reused'}")

        # Local engines take a key of their own; engines the user runs, the user's key.
        engines_key = engine_key(data) if options.local_engines else None
        upstream_key = engines_key or self.base_env.get("GATEWAY_UPSTREAM_API_KEY")
        if options.upstreams:
            upstreams = list(options.upstreams)
        else:
            assert engines_key is not None
            upstreams = self._start_engines(engines_key)
        served = [m for url in upstreams for m in served_models(url, api_key=upstream_key)]
        step(f"models served: {', '.join(served) or 'none'}")

        groups = self._chat_group(engines_key) if options.chat_group else []
        for group in groups:
            served += [str(engine["model"]) for engine in group["engines"]]
            step(f"engine group {group['name']}: started by the gateway when first asked")
        env = gateway_env(
            self.base_env,
            database_url=database_url,
            upstreams=upstreams,
            admin_key=admin,
            served=served,
            upstream_api_key=engines_key,
            engine_groups=groups,
        )
        self.gateway = ChildProcess(
            gateway_argv(options.host, options.port), env=env, log_path=data.fresh_log("gateway")
        )
        with self.signals.deferred():
            self.gateway.start()
        self._wait_gateway()
        base_url = f"http://{client_host(options.host)}:{options.port}/v1"
        self.console.text(
            ready_text(
                base_url=base_url,
                api_key=api_key,
                model=example_model(served),
                created=created,
                data_dir=data.root,
                database_url=database_url,
                took_s=self.console.elapsed(),
            )
        )

    def _chat_group(self, api_key: str | None) -> list[dict[str, Any]]:
        """The two grouped chat engines: the gateway starts them (with the engines' key)."""
        assert api_key is not None  # a chat group means local engines
        chat = prepare_chat_model(self.options.model_cache, on_progress=self.console.step)
        chat_cpus, _ = split_cpus(sorted(os.sched_getaffinity(0)), 2)
        names = ("chat-engine-a", "chat-engine-b")
        return [
            chat_group(
                chat,
                ports=[free_port(), free_port()],
                logs=[self.data.fresh_log(name) for name in names],
                cpus=chat_cpus,
                max_model_len=CHAT_MAX_MODEL_LEN,
            )
        ]

    def _start_engines(self, api_key: str) -> list[str]:
        cache = self.options.model_cache
        embedding = prepare_embedding_model(cache, on_progress=self.console.step)
        cpus = sorted(os.sched_getaffinity(0))
        if self.options.chat_group:  # the gateway runs the chat engines
            (spec,) = embedding_only(embedding, cpus, free_port(), api_key)
            return self._run_engines([spec], ["embedding-engine"])
        chat = prepare_chat_model(cache, on_progress=self.console.step)
        specs = engine_specs(chat, embedding, cpus, [free_port(), free_port()], api_key)
        return self._run_engines(specs, ["chat-engine", "embedding-engine"])

    def _run_engines(self, specs: list[EngineSpec], logs: list[str]) -> list[str]:
        for spec, log in zip(specs, logs, strict=True):
            engine = Engine(spec, self.data.fresh_log(log), base_env=self.base_env)
            with self.signals.deferred():
                engine.start()
                self.engines.append(engine)
            cpu_list = spec.extra_env.get("VLLM_CPU_OMP_THREADS_BIND", "all")
            self.console.step(
                f"starting vLLM for {spec.served_name} on port {spec.port} (CPUs {cpu_list})"
            )
        self._wait_engines()
        return [engine.base_url for engine in self.engines]

    def _wait_engines(self) -> None:
        started = time.monotonic()
        pending = list(self.engines)
        while pending:
            elapsed = time.monotonic() - started
            for engine in list(pending):
                if not engine.process.running:
                    raise self._engine_failed(
                        engine, f"exited with code {engine.process.returncode} before it was ready"
                    )
                if engine.healthy(timeout=1.0):
                    pending.remove(engine)
                    self.console.step(f"{engine.model} ready after {elapsed:.0f} s")
            if not pending:
                return
            if elapsed > self.options.startup_timeout_s:
                raise self._engine_failed(
                    pending[0], f"was not ready after {self.options.startup_timeout_s:.0f} s"
                )
            names = ", ".join(engine.model for engine in pending)
            last = log_gist(pending[0].process.log_tail(1))
            self.console.status(f"waiting for {names}" + (last and f": {last}"))
            time.sleep(0.25)

    def _engine_failed(self, engine: Engine, what: str) -> LocalStackError:
        tail = engine.process.log_tail(30)
        hints = "\n".join(f"  - {hint}" for hint in engine_hints(tail))
        return LocalStackError(
            f"vLLM for {engine.model} {what}. Last lines of {engine.log_path}:\n"
            f"{_indent(tail)}\nWhat to do next:\n{hints}"
        )

    def _wait_gateway(self) -> None:
        assert self.gateway is not None
        host, port = client_host(self.options.host), self.options.port
        url = f"http://{host}:{port}/readyz"
        started = time.monotonic()
        while True:
            if not self.gateway.running:
                raise self._child_failed("the gateway", self.gateway, "exited while starting")
            if _answers_200(url):
                self.console.step(f"gateway ready on {host}:{port}")
                return
            if time.monotonic() - started > GATEWAY_READY_TIMEOUT_S:
                raise self._child_failed(
                    "the gateway", self.gateway, f"was not ready after {GATEWAY_READY_TIMEOUT_S} s"
                )
            self.console.status("waiting for the gateway")
            time.sleep(0.25)

    # -- run and stop -----------------------------------------------------------------------

    def _watch(self) -> None:
        """Sleep until a signal; a child that dies meanwhile takes the whole stack down."""
        while True:
            time.sleep(1.0)
            if self.gateway is not None and not self.gateway.running:
                raise self._child_failed("the gateway", self.gateway, "stopped unexpectedly")
            for engine in self.engines:
                if not engine.process.running:
                    raise self._engine_failed(
                        engine, f"stopped unexpectedly (exit code {engine.process.returncode})"
                    )

    def _child_failed(self, name: str, child: ChildProcess, what: str) -> LocalStackError:
        code = child.returncode
        status = f" (exit code {code})" if code is not None else ""
        return LocalStackError(
            f"{name} {what}{status}. Last lines of {child.log_path}:\n{_indent(child.log_tail(30))}"
        )

    def _stop_all(self) -> None:
        anything = self.gateway or self.engines or self.postgres
        if anything:
            self.console.step("stopping: gateway, engines, postgres")
        if self.gateway is not None:
            # The gateway reads the same environment, so the same settings.
            drain_s = Settings().shutdown_timeout_s
            self.gateway.stop(drain_s + GATEWAY_FLUSH_GRACE_S)
        # Engines do not depend on each other: stop them side by side.
        threads = [
            threading.Thread(target=engine.stop, args=(ENGINE_GRACE_S,)) for engine in self.engines
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.postgres is not None:
            self.postgres.stop()
        if anything:
            self.console.step("stopped")


@contextmanager
def _marked_environ(name: str, value: str) -> Iterator[None]:
    # pgserver starts pg_ctl with our environment: Postgres then carries the marker too.
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (http only)
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines()) or "    (empty)"
