"""The `gateway` command. Flags map onto the one settings object; nothing else lives here."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import click

from gateway import __version__
from gateway.cli_settings import load_settings, open_exposure
from gateway.metrics import MULTIPROC_ENV


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gateway")
def cli() -> None:
    """A self-hosted, OpenAI-compatible gateway in front of vLLM."""


@cli.command()
@click.option("--host", help="Interface to bind (GATEWAY_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (GATEWAY_PORT, default 8080).")
@click.option("--workers", type=int, help="Worker processes (GATEWAY_WORKERS, default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the gateway alone, configured by GATEWAY_* environment variables."""
    import uvicorn

    from gateway.http.protocol import BoundedHttpToolsProtocol
    from gateway.logs import configure_logging

    settings = load_settings(host=host, port=port, workers=workers)
    refusal = open_exposure(settings)
    if refusal is not None:
        raise click.ClickException(refusal)
    if settings.workers > 1 and settings.database_url and not settings.redis_url:
        raise click.ClickException(
            f"--workers {settings.workers} without GATEWAY_REDIS_URL would enforce every key's "
            f"limits once per worker ({settings.workers}x the limit). Set GATEWAY_REDIS_URL "
            "(e.g. redis://localhost:6379/0) so workers share limits, or run one worker."
        )
    if settings.workers > 1 and settings.engine_groups:
        raise click.ClickException(
            f"--workers {settings.workers} with GATEWAY_ENGINE_GROUPS: each worker would switch "
            "the group's engines on its own and they would fight over the device. Run one "
            "worker (or several replicas, each with a group of its own)."
        )
    configure_logging(settings.log_level, settings.log_format)
    # Workers rebuild their settings from the environment: hand the flags down that way.
    for name in ("host", "port", "workers"):
        os.environ[f"GATEWAY_{name.upper()}"] = str(getattr(settings, name))
    if settings.workers > 1:
        # Each worker writes its samples here; /metrics sums them (prometheus multiprocess).
        metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with a cap and deadline on headers
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


def _register() -> None:
    from gateway.db.cli import migrate
    from gateway.deploy.cli import init
    from gateway.eval.cli import eval_command
    from gateway.ingest_client.cli import ingest
    from gateway.keys.cli import keys
    from gateway.local.up import up
    from gateway.plan.cli import models, plan
    from gateway.upstream.switching.cli import engines
    from gateway.usage.cli import usage

    commands = (init, keys, usage, migrate, plan, models, up, ingest, eval_command, engines)
    for command in commands:
        cli.add_command(command)


def main() -> None:
    _register()
    try:
        cli(prog_name="gateway")
    except KeyboardInterrupt:
        sys.exit(130)
