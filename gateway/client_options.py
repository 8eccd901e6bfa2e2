"""The options of the commands that talk to a running gateway as a client (`gateway
ingest`, `gateway eval`): where it is and which API key to send, from flags or the
environment (the openai SDK's OPENAI_API_KEY works too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def client_options(command: F) -> F:
    """Adds `--base-url` and `--api-key` to a command."""
    command = click.option(
        "--api-key",
        envvar=["GATEWAY_API_KEY", "OPENAI_API_KEY"],
        help="API key (GATEWAY_API_KEY or OPENAI_API_KEY).",
    )(command)
    return click.option(
        "--base-url",
        default="http://127.0.0.1:8080/v1",
        show_default=True,
        envvar="GATEWAY_BASE_URL",
        help="The gateway's OpenAI base URL (GATEWAY_BASE_URL).",
    )(command)


def required_api_key(api_key: str | None) -> str:
    if not api_key:
        raise click.UsageError("Give an API key: --api-key, GATEWAY_API_KEY or OPENAI_API_KEY.")
    return api_key
