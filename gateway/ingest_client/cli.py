"""`gateway ingest`: put a folder of documents into a vector store of a running gateway.

Talks to the gateway over HTTP with an API key, like any client; files whose content did
not change since the last run (same sha256 attribute) are skipped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from gateway.client_options import client_options, required_api_key
from gateway.ingest_client.client import ApiError, GatewayClient
from gateway.ingest_client.sync import (
    HASH_ATTR,
    PATH_ATTR,
    LocalFile,
    RemoteFile,
    plan,
    sha256_of,
    walk,
)

_CONCURRENCY = 4


@dataclass
class Outcome:
    unchanged: int = 0
    new: set[str] = field(default_factory=set)  # keys sent for the first time
    changed: set[str] = field(default_factory=set)  # keys whose content changed
    failed: dict[str, str] = field(default_factory=dict)  # key -> why
    waiting: dict[str, str] = field(default_factory=dict)  # key -> file id in progress

    @property
    def added(self) -> int:
        return len(self.new - self.failed.keys())

    @property
    def updated(self) -> int:
        return len(self.changed - self.failed.keys())


@click.command("ingest")
@click.option("--store", "store_name", required=True, help="Vector store name; created if missing.")
@client_options
@click.option("--include-hidden", is_flag=True, help="Also send dot files and dot folders.")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until files are indexed."
)
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait at most.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def ingest(
    store_name: str,
    base_url: str,
    api_key: str | None,
    include_hidden: bool,
    wait: bool,
    timeout: float,
    paths: tuple[Path, ...],
) -> None:
    """Upload PATHS (files or folders, walked recursively) into the vector store --store."""
    api_key = required_api_key(api_key)
    files = walk(paths, include_hidden)
    if not files:
        raise click.UsageError("No files found under the given paths.")
    outcome = asyncio.run(_run(base_url, api_key, store_name, files, wait, timeout))
    click.echo(
        f"{outcome.added} added, {outcome.updated} updated, {outcome.unchanged} unchanged, "
        f"{len(outcome.failed)} failed"
        + (f", {len(outcome.waiting)} still processing" if outcome.waiting else "")
    )
    for key, why in sorted(outcome.failed.items()):
        click.echo(f"  failed: {key}: {why}", err=True)
    if outcome.failed:
        raise SystemExit(1)


async def _run(
    base_url: str, api_key: str, store_name: str, files: list[LocalFile], wait: bool, wait_s: float
) -> Outcome:
    client = GatewayClient(base_url, api_key)
    try:
        return await _sync(client, store_name, files, wait, wait_s)
    except ApiError as exc:
        raise click.ClickException(f"the gateway refused: {exc}") from None
    finally:
        await client.close()


async def _sync(
    client: GatewayClient, store_name: str, files: list[LocalFile], wait: bool, wait_s: float
) -> Outcome:
    store = await client.store_named(store_name)
    store_id = store["id"]
    remote: dict[str, RemoteFile] = {}
    async for item in client.pages(f"/vector_stores/{store_id}/files"):
        attributes = item.get("attributes") or {}
        if isinstance(attributes.get(PATH_ATTR), str):
            error = item.get("last_error") or {}
            remote[attributes[PATH_ATTR]] = RemoteFile(
                item["id"], attributes.get(HASH_ATTR), item["status"], error.get("message")
            )
    hashes = {f.key: await asyncio.to_thread(sha256_of, f.path) for f in files}
    todo = plan(files, hashes, remote)
    outcome = Outcome(unchanged=len(todo.unchanged))
    for local, known in todo.unchanged:
        if known.status == "failed":
            outcome.failed[local.key] = f"unchanged since it failed: {known.last_error}"
        elif known.status == "in_progress":
            outcome.waiting[local.key] = known.file_id
    work = [(f, None) for f in todo.new] + [(f, r.file_id) for f, r in todo.changed]
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def send(local: LocalFile, old: str | None) -> None:
        async with limit:
            try:
                file_id = await client.upload(local.path, local.path.name)
                attributes = {PATH_ATTR: local.key, HASH_ATTR: hashes[local.key]}
                await client.attach(store_id, file_id, attributes)
                if old is not None:
                    await client.delete_file(old)  # the old version leaves the store with it
            except ApiError as exc:
                outcome.failed[local.key] = exc.message
                return
            outcome.waiting[local.key] = file_id
            (outcome.new if old is None else outcome.changed).add(local.key)
            bar.update(1)

    with click.progressbar(length=len(work), label="Uploading", file=sys.stderr) as bar:
        await asyncio.gather(*(send(f, old) for f, old in work))
    if wait and outcome.waiting:
        await _wait(client, store_id, outcome, wait_s)
    return outcome


async def _wait(client: GatewayClient, store_id: str, outcome: Outcome, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    total = len(outcome.waiting)
    with click.progressbar(length=total, label="Indexing ", file=sys.stderr) as bar:
        while outcome.waiting and time.monotonic() < deadline:
            for key, file_id in list(outcome.waiting.items()):
                item = await client.store_file(store_id, file_id)
                if item["status"] == "in_progress":
                    continue
                del outcome.waiting[key]
                bar.update(1)
                if item["status"] != "completed":
                    error = item.get("last_error") or {}
                    outcome.failed[key] = (
                        f"{error.get('code', item['status'])}: {error.get('message', '')}"
                    )
            if outcome.waiting:
                await asyncio.sleep(0.5)
