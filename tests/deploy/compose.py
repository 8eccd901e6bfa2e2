"""The compose files, by path, and read as plain data (merge tags as their values).

`project.py` builds what `docker compose` would from them; this is for tests that check a
file as it is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROFILES = sorted((ROOT / "deploy" / "profiles").glob("*.yml"))
SCALE_OUT = ROOT / "deploy" / "compose.scale-out.yml"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?+][^}]*)?\}")


def load(path: Path) -> dict[str, Any]:
    from tests.deploy.project import Tagged, read_yaml

    def plain(node: Any) -> Any:
        if isinstance(node, Tagged):
            return plain(node.value)
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    return plain(read_yaml(path))  # type: ignore[no-any-return]


def is_group(path: Path) -> bool:
    """A profile whose chat engines form an engine group (its x-plan plans a `group`)."""
    return "group" in load(path).get("x-plan", {})


def variables(path: Path) -> set[str]:
    return set(VARIABLE.findall(path.read_text(encoding="utf-8")))


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]
