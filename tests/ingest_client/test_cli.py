"""`gateway ingest` against a real gateway: creates the store, skips unchanged files,
replaces changed ones, reports failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from gateway.ingest_client.cli import ingest
from gateway.ingest_client.sync import LocalFile, RemoteFile, plan, walk
from tests.admin import ADMIN_KEY, create_key
from tests.conftest import RunningGateway, SdkFactory
from tests.rag.pdfs import BROKEN_PDF


def test_walk_and_plan(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("a")
    (docs / "sub" / "b.txt").write_text("b")
    (docs / ".git").mkdir()
    (docs / ".git" / "config").write_text("secret")
    single = tmp_path / "c.txt"
    single.write_text("c")
    keys = [f.key for f in walk([docs, single])]
    assert keys == ["c.txt", "docs/a.md", "docs/sub/b.txt"]
    assert ".git" in " ".join(f.key for f in walk([docs], include_hidden=True))

    a, b, c = (LocalFile(k, tmp_path / k) for k in ("a", "b", "c"))
    remote = {
        "a": RemoteFile("file-a", "h1", "completed"),
        "b": RemoteFile("file-b", "old", "failed"),
    }
    todo = plan([a, b, c], {"a": "h1", "b": "h2", "c": "h3"}, remote)
    assert todo.new == [c]
    assert [x[0] for x in todo.changed] == [b]
    assert [x[0] for x in todo.unchanged] == [a]


async def run_cli(gw: RunningGateway, key: str, *args: str) -> Result:
    runner = CliRunner()
    argv = ["--base-url", gw.url + "/v1", "--api-key", key, *args]
    return await asyncio.to_thread(runner.invoke, ingest, argv)


async def test_ingest_command(rag_gateway: RunningGateway, tmp_path: Path, sdk: SdkFactory) -> None:
    key = (await create_key(rag_gateway, "cli")).secret
    docs = tmp_path / "manual"
    docs.mkdir()
    (docs / "wifi.md").write_text("The wifi password is printed under the router.")
    (docs / "backup.txt").write_text("Backups run nightly to the NAS in the basement.")
    (docs / "scan.pdf").write_bytes(BROKEN_PDF)

    first = await run_cli(rag_gateway, key, "--store", "manual", str(docs))
    assert first.exit_code == 1, first.output
    assert "2 added, 0 updated, 0 unchanged, 1 failed" in first.stdout
    assert "manual/scan.pdf: invalid_file" in first.stderr

    again = await run_cli(rag_gateway, key, "--store", "manual", str(docs))
    assert "0 added, 0 updated, 3 unchanged" in again.stdout

    (docs / "wifi.md").write_text("The guest network password is on the fridge.")
    (docs / "scan.pdf").unlink()
    changed = await run_cli(rag_gateway, key, "--store", "manual", str(docs))
    assert changed.exit_code == 0, changed.output
    assert "0 added, 1 updated, 1 unchanged, 0 failed" in changed.stdout

    client = sdk(rag_gateway, api_key=key)
    [store] = [s async for s in client.vector_stores.list()]
    assert store.name == "manual"
    hits = await client.vector_stores.search(store.id, query="guest network password")
    assert hits.data[0].attributes["path"] == "manual/wifi.md"  # type: ignore[index]
    texts = " ".join(h.content[0].text for h in hits.data)
    assert "printed under the router" not in texts  # the old version is gone
    assert [s async for s in sdk(rag_gateway, api_key=ADMIN_KEY).vector_stores.list()] != []


async def test_ingest_needs_a_key(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = CliRunner(env={"GATEWAY_API_KEY": "", "OPENAI_API_KEY": ""}).invoke(
        ingest, ["--store", "s", str(tmp_path)]
    )
    assert result.exit_code == 2 and "API key" in result.output
