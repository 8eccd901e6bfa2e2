"""Typed access to what the app keeps on Starlette's untyped `app.state`.

Each capability reads the one object it needs under its own name (retrieval, key admin,
usage reports), checked for its type here, so a route gets exactly what it uses and no
capability imports the composition root (gateway.wiring) that puts them there.
"""

from __future__ import annotations

from typing import TypeVar

from starlette.datastructures import State
from starlette.requests import HTTPConnection

from gateway.config import Settings

T = TypeVar("T")


def attribute(holder: State, name: str, kind: type[T]) -> T | None:
    """`holder.<name>` if it is a `kind`, else None (not set: the lifespan has not run,
    or the gateway runs without what it needs)."""
    value = getattr(holder, name, None)
    return value if isinstance(value, kind) else None


def settings_of(connection: HTTPConnection) -> Settings:
    """The gateway's settings, set on the app when it is created."""
    found = attribute(connection.app.state, "settings", Settings)
    if found is None:
        raise RuntimeError("the app has no settings: build it with gateway.app.create_app")
    return found
