"""`gateway up`: flags in, a Stack run, an exit code out. Nothing else lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import normalise_upstream_url
from gateway.local.datadir import DATA_DIR_ENV, default_data_dir
from gateway.local.errors import LocalStackError
from gateway.local.models import default_cache_dir
from gateway.local.stack import UpOptions

MODEL_CACHE_ENV = "GATEWAY_MODEL_CACHE"


def parse_upstreams(values: tuple[str, ...]) -> tuple[str, ...]:
    urls = []
    for value in values:
        url = normalise_upstream_url(value)
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(
                f"{value!r}: expected an engine's root URL like http://127.0.0.1:8000",
                param_hint="--upstream",
            )
        urls.append(url)
    return tuple(dict.fromkeys(urls))


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_DIR_ENV,
    help=f"Database, keys and logs ({DATA_DIR_ENV}; default ~/.local/share/gateway).",
)
@click.option(
    "--model-cache",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=MODEL_CACHE_ENV,
    help=f"Converted models ({MODEL_CACHE_ENV}; default ~/.cache/gateway/models).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="GATEWAY_HOST",
    help="Interface the gateway binds (GATEWAY_HOST); engines stay on 127.0.0.1.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    envvar="GATEWAY_PORT",
    help="The gateway's port (GATEWAY_PORT).",
)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    help="Use this running engine (repeat) instead of starting the local CPU engines.",
)
@click.option(
    "--chat-group",
    is_flag=True,
    help="Two chat engines (the chat model under two names) in one engine group: the "
    "gateway starts the one asked for and stops the other, one at a time.",
)
@click.option(
    "--startup-timeout",
    type=click.FloatRange(min=10),
    default=600,
    show_default=True,
    help="Seconds the engines may take to start.",
)
def up(
    data_dir: Path | None,
    model_cache: Path | None,
    host: str,
    port: int,
    upstreams: tuple[str, ...],
    startup_timeout: float,
    chat_group: bool,
) -> None:
    """Run the whole stack on this machine, no Docker, no GPU.

    Embedded Postgres with pgvector, two vLLM CPU engines (SmolLM2-135M-Instruct for chat,
    all-MiniLM-L6-v2 for embeddings; aliases gpt-4o-mini, claude-* and text-embedding-3-small), then
    the gateway. Prints the base URL and an API key; state persists in --data-dir, so the
    next run has the same key and data. Ctrl-C stops everything (exit code 130; SIGTERM: 0).
    """
    from gateway.local.console import Console
    from gateway.local.signals import Signals
    from gateway.local.supervisor import Stack

    options = UpOptions(
        data_dir=data_dir or default_data_dir(),
        model_cache=model_cache or default_cache_dir(),
        host=host,
        port=port,
        upstreams=parse_upstreams(upstreams),
        startup_timeout_s=startup_timeout,
        chat_group=chat_group,
    )
    if chat_group and upstreams:
        raise click.UsageError("--chat-group starts local engines: it cannot go with --upstream")
    context = click.get_current_context()
    signals = Signals()
    signals.install()
    try:
        code = Stack(options, Console(sys.stdout), signals).run()
    except LocalStackError as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise click.ClickException(f"the embedded database failed: {reason}") from None
    finally:
        signals.restore()
    context.exit(code)
