"""The console's assets: vendored (checksummed, licensed), served by the gateway, offline."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx

from gateway.ui.render import STATIC, TEMPLATES
from tests.conftest import RunningGateway

VENDOR = STATIC / "vendor"


def test_vendored_files_match_their_recorded_checksums_and_carry_licences() -> None:
    readme = (VENDOR / "README.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(recorded) == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "Zero-Clause BSD" in (VENDOR / "htmx.LICENSE").read_text()
    assert "MIT" in (VENDOR / "uPlot.LICENSE").read_text()


def test_templates_load_nothing_from_elsewhere() -> None:
    for template in Path(TEMPLATES).glob("*.html"):
        text = template.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template.name
        assert "<script>" not in text, template.name  # no inline scripts (CSP)
        assert not re.search(r"\son[a-z]+=", text), template.name  # no inline handlers
        assert "style=" not in text, template.name  # the CSP allows no inline styles


async def test_assets_are_served(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        for path, kind in (
            ("/ui/static/vendor/htmx.min.js", "javascript"),
            ("/ui/static/vendor/uPlot.iife.min.js", "javascript"),
            ("/ui/static/console.css", "text/css"),
            ("/ui/static/console.js", "javascript"),
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert kind in response.headers["content-type"], path
        assert (await client.get("/ui/static/../app.py")).status_code == 404
