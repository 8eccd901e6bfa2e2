"""Reading compose files as data: no Docker engine here, so tests parse them with PyYAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROFILES = sorted((ROOT / "deploy" / "profiles").glob("*.yml"))
SCALE_OUT = ROOT / "deploy" / "compose.scale-out.yml"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


# A SafeLoader that also reads compose's merge tags (!reset, !override) as plain values.
_ComposeLoader: Any = type("_ComposeLoader", (yaml.SafeLoader,), {})


def _plain(loader: Any, node: Any) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)


_ComposeLoader.add_constructor("!reset", _plain)
_ComposeLoader.add_constructor("!override", _plain)


def load(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ComposeLoader)  # noqa: S506
    assert isinstance(data, dict)
    return data


def variables(path: Path) -> set[str]:
    return set(VARIABLE.findall(path.read_text(encoding="utf-8")))


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]
