"""`gateway init`, the click face of `gateway.deploy.init` (which also runs without click,
as `python3 -m gateway.deploy.init`, on a GPU box where nothing is installed yet)."""

from __future__ import annotations

import sys

import click

from gateway.deploy.init import main


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def init(args: tuple[str, ...]) -> None:
    """Write the compose stack's .env from .env.example, with fresh secrets."""
    sys.exit(main(list(args)))
