"""Debian's chromium driven by Playwright (no browser download), and screenshots as artifacts.

Set GATEWAY_UI_ARTIFACTS to choose where screenshots go (default tests/ui/artifacts/) and
GATEWAY_UI_DOCS_SCREENSHOT=1 to refresh docs/console.png from the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing_prerequisite

CHROMIUM = os.environ.get("GATEWAY_UI_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GATEWAY_UI_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    missing = None
    try:
        import playwright.async_api as playwright_api
    except ImportError:
        missing = "the playwright package is missing (pip install -e '.[dev]')"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing is not None:
        missing_prerequisite(missing)
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


class Watch:
    """Console errors, CSP violations and uncaught exceptions a page produced."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        # A 4xx an htmx request got on purpose is logged by the browser as a failed load.
        if message.type == "error" and "Failed to load resource" not in text:
            self.problems.append(f"console: {text}")


async def shoot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def publish(shot: Path) -> None:
    """Copy a screenshot into docs/ for the README, when asked to."""
    if os.environ.get("GATEWAY_UI_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "console.png")
