"""A stand-in for the `vllm serve` of our compose files, started with their exact argv.

`python -m tests.deploy.fake_vllm MODEL --served-model-name N --api-key K --port P ...`
serves the fake engine (or, with `--runner pooling`, the fake embedder) under the name, port
and key the compose command gives, and, as vLLM does with `--api-key`, refuses `/v1/*`
without that bearer while `/health` stays open. With `--enable-sleep-mode` and
VLLM_SERVER_DEV_MODE=1 it serves vLLM's sleep API too. Under REHEARSAL_GPU_DIR it takes its
`--gpu-memory-utilization` of a shared fake card (`fake_gpu.py`): it refuses to start, or to
wake, when that much is not free, as vLLM would. Whether each flag exists in the pinned
vLLM is checked elsewhere (`deploy/vllm-flags.yaml`); this only honours the contract the
gateway depends on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tests.deploy.fake_gpu import ENV, FakeGpu
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.engine import FakeEngine
from tests.fakes.sleeping_engine import Device, SleepingEngine

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm serve")
    parser.add_argument("model")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--runner", default="generate")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--enable-sleep-mode", action="store_true")
    args, _ = parser.parse_known_args(argv)
    return args


class GpuSleepingEngine(SleepingEngine):
    """vLLM's sleep API over the shared fake card: asleep it holds nothing, and it wakes
    only when its share is free (else 500, as CUDA's out-of-memory would make it)."""

    def __init__(self, model: str, gpu: FakeGpu | None, share: float) -> None:
        super().__init__(model, Device(), awake=True, wake_s=0.2)
        self.gpu = gpu
        self.share = share

    async def _sleep(self, request: web.Request) -> web.Response:
        response = await super()._sleep(request)
        if self.gpu is not None:
            self.gpu.hold(0.0)
        return response

    async def _wake_up(self, request: web.Request) -> web.Response:
        if self.gpu is not None and self.gpu.refusal(self.share):
            return web.json_response({"error": "CUDA out of memory"}, status=500)
        response = await super()._wake_up(request)
        if self.gpu is not None and response.status == 200:
            self.gpu.hold(self.share)
        return response


def metrics(model: str) -> bytes:
    """The vLLM metrics our Grafana dashboard charts, as vLLM names and types them (zeros:
    the real values come from real engines, in the real-engine rehearsal)."""
    registry = CollectorRegistry()
    labels = {"model_name": model, "engine": "0"}
    for name in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        Gauge(f"vllm:{name}", name, list(labels), registry=registry).labels(**labels).set(0)
    Counter("vllm:generation_tokens", "tokens", list(labels), registry=registry).labels(**labels)
    Histogram("vllm:time_to_first_token_seconds", "ttft", list(labels), registry=registry).labels(
        **labels
    )
    return generate_latest(registry)


def app_for(args: argparse.Namespace, gpu: FakeGpu | None = None) -> web.Application:
    sleep_api = args.enable_sleep_mode and os.environ.get("VLLM_SERVER_DEV_MODE") == "1"
    if args.runner == "pooling":
        app = FakeEmbedder(args.served_model_name).app()
    elif sleep_api:
        app = GpuSleepingEngine(args.served_model_name, gpu, args.gpu_memory_utilization).app()
    else:
        app = FakeEngine(args.served_model_name).app()
    exposition = metrics(args.served_model_name)

    async def serve_metrics(_: web.Request) -> web.Response:
        return web.Response(body=exposition, content_type="text/plain")

    app.router.add_get("/metrics", serve_metrics)  # open even with --api-key, as in vLLM
    if args.api_key:
        expected = f"Bearer {args.api_key}"

        @web.middleware
        async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/v1") and request.headers.get("authorization") != expected:
                return web.json_response({"error": "Unauthorized"}, status=401)
            return await handler(request)

        app.middlewares.append(require_key)
    return app


def main(argv: list[str]) -> None:
    args = parse(argv)
    gpu = None
    if os.environ.get(ENV):
        gpu = FakeGpu(Path(os.environ[ENV]), args.served_model_name)
        refusal = gpu.refusal(args.gpu_memory_utilization)
        if refusal:
            sys.exit(refusal)
        gpu.hold(args.gpu_memory_utilization)
    web.run_app(app_for(args, gpu), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
