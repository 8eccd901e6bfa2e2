"""Real vLLM CPU engines with small real models, started once per test session.

Every test in this folder is marked `e2e`. An engine that cannot start FAILS the tests that
need it, with the tail of its log: a real-engine suite that skipped would pass CI while
testing nothing.

Models are prepared (converted once) in GATEWAY_TEST_MODEL_CACHE, or the user's model cache
(~/.cache/gateway/models), so repeated runs reuse them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.local.engine import Engine, EngineSpec, free_port, split_cpus
from gateway.local.errors import LocalStackError
from gateway.local.models import (
    LocalModel,
    default_cache_dir,
    prepare_chat_model,
    prepare_embedding_model,
)

E2E_DIR = Path(__file__).resolve().parent
CHAT_MAX_MODEL_LEN = 2048
# Each engine takes 1-2 min on two cores; started together they share the cores.
STARTUP_TIMEOUT_S = 600

_log = logging.getLogger(__name__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this folder's.
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _chat_spec(model: LocalModel, env: dict[str, str]) -> EngineSpec:
    return EngineSpec(
        model=model.path,
        served_name=model.name,
        port=free_port(),
        max_model_len=CHAT_MAX_MODEL_LEN,
        extra_env=env,
    )


def _embedding_spec(model: LocalModel, env: dict[str, str]) -> EngineSpec:
    return EngineSpec(
        model=model.path,
        served_name=model.name,
        port=free_port(),
        runner="pooling",
        extra_env=env,
    )


def _lora_spec(model: LocalModel, env: dict[str, str]) -> EngineSpec:
    """The chat model again, taking LoRA adapters at run time (rank 8 at most)."""
    return replace(
        _chat_spec(model, env),
        extra_args=("--enable-lora", "--max-lora-rank", "8", "--max-loras", "2"),
        extra_env={**env, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"},
    )


Prepare = Callable[[Path], LocalModel]
Describe = Callable[[LocalModel, dict[str, str]], EngineSpec]
# fixture name -> (prepare the model, describe its engine)
_RECIPES: dict[str, tuple[Prepare, Describe]] = {
    "chat_engine": (prepare_chat_model, _chat_spec),
    "embedding_engine": (prepare_embedding_model, _embedding_spec),
    "lora_engine": (prepare_chat_model, _lora_spec),
}


class EnginePool:
    """Starts engines on first request; the first request also starts every other engine
    this session's tests use, so their slow starts overlap instead of adding up."""

    def __init__(self, cache: Path, logs: Path, wanted: set[str]) -> None:
        self.cache = cache
        self.logs = logs
        self.wanted = wanted
        self.engines: dict[str, Engine] = {}
        self.failures: dict[str, str] = {}
        self.ready: set[str] = set()

    def get(self, name: str) -> Engine:
        if not self.engines and not self.failures:
            names = sorted(self.wanted | {name})
            # vLLM's automatic binding would put every engine on the same cores.
            binds = split_cpus(sorted(os.sched_getaffinity(0)), len(names))
            for other, cpus in zip(names, binds, strict=True):
                env = {"VLLM_CPU_OMP_THREADS_BIND": cpus} if len(names) > 1 else {}
                self._start(other, env)
        elif name not in self.engines and name not in self.failures:
            self._start(name, {})
        if name in self.failures:
            pytest.fail(self.failures[name], pytrace=False)
        engine = self.engines[name]
        if name not in self.ready:
            try:
                took = engine.wait_ready(STARTUP_TIMEOUT_S, on_progress=_progress(name))
            except LocalStackError as exc:
                self.failures[name] = str(exc)
                pytest.fail(str(exc), pytrace=False)
            self.ready.add(name)
            rss = engine.rss_bytes() / 2**30
            _log.info("%s ready after %.0f s, %.1f GiB resident", name, took, rss)
        return engine

    def _start(self, name: str, env: dict[str, str]) -> None:
        prepare, describe = _RECIPES[name]
        try:
            model = prepare(self.cache)
            engine = Engine(describe(model, env), self.logs / f"{name}.log")
            engine.start()
        except Exception as exc:  # any cause must fail the tests, with what it was
            self.failures[name] = f"could not start {name}: {type(exc).__name__}: {exc}"
            return
        self.engines[name] = engine

    def stop_all(self) -> None:
        for engine in self.engines.values():
            engine.stop()


def _progress(name: str) -> Callable[[float, str], None]:
    def report(elapsed: float, last_line: str) -> None:
        _log.info("%s starting (%.0f s): %s", name, elapsed, last_line[-160:])

    return report


@pytest.fixture(scope="session")
def model_cache() -> Path:
    configured = os.environ.get("GATEWAY_TEST_MODEL_CACHE")
    return Path(configured) if configured else default_cache_dir()


@pytest.fixture(scope="session")
def engine_pool(
    request: pytest.FixtureRequest,
    model_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EnginePool]:
    wanted = {
        name
        for item in request.session.items
        for name in getattr(item, "fixturenames", ())
        if name in _RECIPES
    }
    pool = EnginePool(model_cache, tmp_path_factory.mktemp("engines"), wanted)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def chat_engine(engine_pool: EnginePool) -> Engine:
    """SmolLM2-135M-Instruct served as `smollm2-135m-instruct`, max_model_len 2048."""
    return engine_pool.get("chat_engine")


@pytest.fixture(scope="session")
def lora_engine(engine_pool: EnginePool) -> Engine:
    """SmolLM2-135M-Instruct as `smollm2-135m-instruct`, started with `--enable-lora`
    (rank 8 at most) and runtime adapter loading allowed."""
    return engine_pool.get("lora_engine")


@pytest.fixture(scope="session")
def embedding_engine(engine_pool: EnginePool) -> Engine:
    """all-MiniLM-L6-v2 (384-d) served as `all-minilm-l6-v2` for /v1/embeddings."""
    return engine_pool.get("embedding_engine")
