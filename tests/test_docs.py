"""The README cannot drift from the code: every setting and CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from gateway.cli import _register, cli
from gateway.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"GATEWAY_{name.upper()}"
        for name in Settings.model_fields
        if f"GATEWAY_{name.upper()}" not in README
    ]
    assert missing == []


def test_every_cli_command_is_in_the_readme() -> None:
    _register()
    missing = [f"gateway {name}" for name in cli.commands if f"gateway {name}" not in README]
    assert missing == []
