"""The README's "Open WebUI with per-user usage" recipe, run as written: its Open WebUI
settings drive requests shaped as Open WebUI sends them, its commands run in bash."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from tests.admin import ADMIN_KEY, admin_headers
from tests.api.test_end_users import ALICE, BOB, open_webui_headers
from tests.api.test_keys_limits_usage import BODY
from tests.conftest import GatewayFactory, RunningGateway

ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8080"


def section() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Open WebUI with per-user usage")
    end = text.index("\n## ", start + 3)
    return re.findall(r"```bash\n(.*?)```", text[start:end], re.S)


async def run_bash(script: str, gw: RunningGateway, cwd: Path, database_url: str) -> str:
    # `gateway` is this checkout's CLI, whatever else is installed.
    prelude = f'gateway() {{ "{sys.executable}" -m gateway "$@"; }}\nset -e\n'
    env = {
        **os.environ,
        "ADMIN": ADMIN_KEY,
        "GATEWAY_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
    }
    saved = cwd / "open-webui-key.json"
    if saved.exists():  # what the first block set in the reader's shell
        env["KEY_ID"] = json.loads(saved.read_text())["id"]
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        prelude + script.replace(README_URL, gw.url),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_readme_open_webui_recipe(
    keyed_factory: GatewayFactory, database_url: str, tmp_path: Path
) -> None:
    settings_block, create_block, report_block, table_block = section()
    gw = await keyed_factory()
    await run_bash(create_block, gw, tmp_path, database_url)
    key = json.loads((tmp_path / "open-webui-key.json").read_text())
    assert key["trusted_front_end"] is True and key["end_user_rpm"] == 20

    # Open WebUI as the settings block configures it: {OPENAI_API_BASE_URL}/chat/completions
    # with OPENAI_API_KEY, and the user headers because ENABLE_FORWARD_USER_INFO_HEADERS=true.
    owui = dict(
        line.split("#")[0].strip().split("=", 1)
        for line in settings_block.splitlines()
        if "=" in line.split("#")[0]
    )
    assert owui["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true"
    assert owui["OPENAI_API_KEY"].startswith("sk-gw-")
    base = owui["OPENAI_API_BASE_URL"].replace("http://gateway:8080", gw.url)
    async with gw.client() as client:
        for who, times in ((ALICE, 2), (BOB, 1)):
            for _ in range(times):
                response = await client.post(
                    f"{base}/chat/completions",
                    json=BODY,
                    headers=open_webui_headers(key["key"], *who, chat="c1"),
                )
                assert response.status_code == 200
    await gw.storage.usage.flush()

    report = json.loads(await run_bash(report_block, gw, tmp_path, database_url))
    people = {row["end_user"]: row["requests"] for row in report["by_end_user"]}
    assert people == {"alice@example.com": 2, "bob@example.com": 1}
    table = await run_bash(table_block, gw, tmp_path, database_url)
    assert "END USER" in table
    alice_line = next(line for line in table.splitlines() if "alice@example.com" in line)
    assert alice_line.split()[1] == "2"  # requests
    async with gw.client(headers=admin_headers()) as admin:
        alice = await admin.get(f"/admin/keys/{key['id']}/end-users/alice@example.com")
    assert alice.json()["limits"]["rpm"] == 60
    assert alice.json()["limits"]["daily_tokens"] == 1_000_000
