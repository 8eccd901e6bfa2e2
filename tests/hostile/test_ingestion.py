"""Hostile files against a real gateway process: a large upload and its ingestion keep
memory bounded, and documents built to hurt a parser (decompression bomb, endless work,
deep nesting, a memory hog) fail themselves only, while another key is served."""

from __future__ import annotations

import asyncio
import time
import zlib
from pathlib import Path
from typing import Any

import httpx

from tests.admin import admin_headers, create_key
from tests.fakes.embedder import FakeEmbedder
from tests.gateway_process import GatewayProcess
from tests.hostile.conftest import KeyedProcess
from tests.rag.pdfs import text_pdf
from tests.raw_http import MiB

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def own_rss(pid: int) -> int:
    """Resident memory of the gateway process itself, without the parsers it spawns."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Peak resident memory while the block runs, sampled every 50 ms: the gateway's own,
    and with its children (the sandboxed parsers, each within its memory limit)."""

    def __init__(self, gw: GatewayProcess) -> None:
        self.gw = gw
        self.baseline = own_rss(gw.pid)
        self.peak = self.baseline
        self.children_peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            own = own_rss(self.gw.pid)
            self.peak = max(self.peak, own)
            self.children_peak = max(self.children_peak, self.gw.rss_bytes() - own)
            await asyncio.sleep(0.05)

    @property
    def grown(self) -> int:
        return self.peak - self.baseline

    async def __aenter__(self) -> PeakMemory:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


class Bystander:
    """Another key chatting all along: the slowest answer it got, and any failure."""

    def __init__(self, gw: GatewayProcess, key: str) -> None:
        self.client = gw.client(headers={"authorization": f"Bearer {key}"})
        self.slowest = 0.0
        self.statuses: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def _chat(self) -> None:
        while True:
            began = time.perf_counter()
            answer = await self.client.post("/v1/chat/completions", json=CHAT)
            self.slowest = max(self.slowest, time.perf_counter() - began)
            self.statuses.add(answer.status_code)
            await asyncio.sleep(0.1)

    async def __aenter__(self) -> Bystander:
        self._task = asyncio.create_task(self._chat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.client.aclose()


async def settle(client: httpx.AsyncClient, store: str, file_ids: list[str]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for _ in range(1200):
        listed = (await client.get(f"/v1/vector_stores/{store}/files?limit=100")).json()
        files = {f["id"]: f for f in listed["data"]}
        if len(files) == len(file_ids) and all(
            f["status"] != "in_progress" for f in files.values()
        ):
            return files
        await asyncio.sleep(0.1)
    raise AssertionError(f"ingestion did not end: {files}")


def write_text(path: Path, size: int) -> None:
    line = b"The quick brown fox jumps over the lazy dog near the river bank today. " * 14
    with path.open("wb") as out:
        for _ in range(size // (len(line) + 2)):
            out.write(line + b"\n\n")


async def test_a_large_upload_and_its_ingestion_keep_memory_bounded(
    keyed_process: KeyedProcess,
    embedder: FakeEmbedder,
    tmp_path: Path,
) -> None:
    embedder.behaviour.max_model_len = 8192
    gw = await keyed_process(embedder, GATEWAY_ACCESS_LOG="false")
    big = tmp_path / "big.txt"
    write_text(big, 16 * MiB)
    bystander_key = (await create_key(gw, "bystander")).secret
    headers = admin_headers()
    async with (
        PeakMemory(gw) as memory,
        Bystander(gw, bystander_key) as bystander,
        httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=60) as client,
    ):
        with big.open("rb") as source:
            uploaded = await client.post(
                "/v1/files", files={"file": ("big.txt", source)}, data={"purpose": "assistants"}
            )
        assert uploaded.status_code == 200, uploaded.text
        store = (await client.post("/v1/vector_stores", json={"name": "big"})).json()["id"]
        file_id = uploaded.json()["id"]
        static = {"max_chunk_size_tokens": 1000, "chunk_overlap_tokens": 0}
        strategy = {"type": "static", "static": static}
        await client.post(
            f"/v1/vector_stores/{store}/files",
            json={"file_id": file_id, "chunking_strategy": strategy},
        )
        files = await settle(client, store, [file_id])
    assert uploaded.json()["bytes"] == big.stat().st_size
    assert files[file_id]["status"] == "completed"
    assert embedder.seen.inputs > 1500  # every chunk was embedded...
    # ...with the process holding a few MB for it, not the file, its text or its chunks
    # (before ingestion streamed, this very test measured +600 MB).
    assert memory.grown < 64 * MiB, memory.grown
    assert bystander.statuses == {200} and bystander.slowest < 2.0


def bomb_pdf(inflated_mib: int) -> bytes:
    """A PDF whose content stream is ~1 MB deflated and `inflated_mib` MiB inflated."""
    deflate = zlib.compressobj(9)
    block = b"BT /F1 12 Tf 72 720 Td (bomb bomb bomb) Tj ET " * 22000
    stream = b"".join(deflate.compress(block) for _ in range(inflated_mib)) + deflate.flush()
    head, rest = text_pdf("x").split(b"4 0 obj\n", 1)
    _, tail = rest.split(b"endobj\n", 1)
    body = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
    return head + b"4 0 obj\n" + body + b"\nendstream\nendobj\n" + tail


HOSTILE = {
    "bomb.pdf": bomb_pdf(300),  # pypdf's decompression limit
    "slow.html": b"<p>x</p>" * 5_000_000,  # seconds of parsing: the time limit
    # 18 MB of empty objects, ~500 MB once parsed: past the memory limit within a fraction
    # of a second, long before the time limit even on a slow machine.
    "hog.json": b"[" + b"{}," * 6_000_000 + b"{}]",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,  # recursion
}


async def test_hostile_documents_fail_only_themselves(
    keyed_process: KeyedProcess,
    embedder: FakeEmbedder,
) -> None:
    gw = await keyed_process(
        embedder,
        GATEWAY_ACCESS_LOG="false",
        GATEWAY_PARSE_TIMEOUT_S="2",
        GATEWAY_PARSE_MEMORY_MB="256",
        # One parser at a time, so that each meets the limit it is built for (on two
        # busy cores, two at once could make the memory hog time out instead).
        GATEWAY_INGEST_CONCURRENCY="1",
    )
    bystander_key = (await create_key(gw, "bystander")).secret
    headers = admin_headers()
    documents = {**HOSTILE, "good.pdf": text_pdf("Solar panels face south")}
    async with (
        PeakMemory(gw) as memory,
        Bystander(gw, bystander_key) as bystander,
        httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=60) as client,
    ):
        ids = {}
        for name, data in documents.items():
            uploaded = await client.post(
                "/v1/files", files={"file": (name, data)}, data={"purpose": "assistants"}
            )
            ids[uploaded.json()["id"]] = name
        store = (
            await client.post("/v1/vector_stores", json={"name": "h", "file_ids": list(ids)})
        ).json()["id"]
        files = await settle(client, store, list(ids))
        hits = await client.post(f"/v1/vector_stores/{store}/search", json={"query": "solar"})
    outcome = {
        ids[i]: (f["status"], (f["last_error"] or {}).get("message", "")) for i, f in files.items()
    }
    assert outcome["good.pdf"] == ("completed", "")
    assert [h["filename"] for h in hits.json()["data"]] == ["good.pdf"]
    for name in HOSTILE:
        assert outcome[name][0] == "failed", outcome
    assert "Limit reached" in outcome["bomb.pdf"][1]
    assert "GATEWAY_PARSE_TIMEOUT_S" in outcome["slow.html"][1]
    assert "GATEWAY_PARSE_MEMORY_MB" in outcome["hog.json"][1]
    assert gw.proc.poll() is None  # the gateway itself is untouched...
    assert memory.grown < 64 * MiB, memory.grown  # ...and so is its memory
    assert 0 < memory.children_peak < 400 * MiB  # the parsers ran apart, within their limit
    assert bystander.statuses == {200} and bystander.slowest < 2.0
