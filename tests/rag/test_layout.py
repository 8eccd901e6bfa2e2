"""Retrieval's dependencies run one way, as gateway/rag/__init__.py draws them: routes →
ingestion, search, grounding → what they share at gateway.rag's level; grounding may use
search; nothing in retrieval reaches up into the app's entry, state or wiring."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.rag

RAG = Path(gateway.rag.__file__).parent
CONCERNS = ("routes", "ingestion", "search", "grounding")
# What each concern may not import (besides the entry layer, forbidden to all).
FORBIDDEN = {
    "": CONCERNS,  # the shared modules at gateway.rag's level
    "ingestion": ("routes", "search", "grounding"),
    "search": ("routes", "ingestion", "grounding"),
    "grounding": ("routes", "ingestion"),
    "routes": (),
}
ENTRY = ("gateway.api", "gateway.app", "gateway.state", "gateway.wiring", "gateway.cli")


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top, in functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_every_module_is_in_a_concern_or_shared() -> None:
    for path in RAG.rglob("*.py"):
        parts = path.relative_to(RAG).parts
        assert len(parts) == 1 or parts[0] in CONCERNS, path


def test_dependencies_run_one_way() -> None:
    wrong: list[str] = []
    for path in sorted(RAG.rglob("*.py")):
        parts = path.relative_to(RAG).parts
        concern = parts[0] if len(parts) > 1 else ""
        banned = [f"gateway.rag.{other}" for other in FORBIDDEN[concern]] + list(ENTRY)
        for name in sorted(imports(path)):
            if any(within(name, package) for package in banned):
                wrong.append(f"{path.relative_to(RAG)} imports {name}")
    assert wrong == []
