"""Settings for the `gateway` commands: bad configuration is a readable exit, not a trace."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from gateway.config import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/YAML plus CLI overrides (None means "not given")."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [
            f"  GATEWAY_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise click.ClickException("invalid configuration:\n" + "\n".join(lines)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
