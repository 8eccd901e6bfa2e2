"""Memory of a real gateway process while a large text file is uploaded and ingested.

Embedded Postgres + pgvector, a fake embedding engine on loopback (64-d hashed bag of
words, in this process), and `python -m gateway serve` as a user runs it: a text file of
`--mib` MiB is written to disk, uploaded through `POST /v1/files` (streamed from disk),
attached to a store with static chunks of `--chunk-tokens`, and the process's resident
memory (VmRSS, from /proc) is sampled every 100 ms until the file is `completed`.

    python -m benchmarks.ingest_memory                      # 64 MiB, 200-token chunks
    python -m benchmarks.ingest_memory --mib 200 --chunk-tokens 100
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import httpx

from tests.fakes.embedder import FakeEmbedder
from tests.gateway_process import start_gateway_process

ADMIN = "bench-admin-key"
WORDS = [f"word{i}" for i in range(5000)]


def write_document(path: Path, mib: int) -> None:
    rng = random.Random(7)
    block = []
    size = 0
    while size < 1 << 20:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + ". "
        block.append(sentence + ("\n\n" if rng.random() < 0.1 else ""))
        size += len(block[-1])
    data = "".join(block).encode()[: 1 << 20]
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(data)


class Sampler:
    def __init__(self, rss: object) -> None:
        self.rss = rss
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())  # type: ignore[operator]
            await asyncio.sleep(0.1)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def main(mib: int, chunk_tokens: int) -> None:
    import pgserver

    work = Path(tempfile.mkdtemp(prefix="ingest-memory-"))
    server = pgserver.get_server(str(work / "pg"), cleanup_mode="delete")  # type: ignore[attr-defined]
    embedder = await FakeEmbedder("bench-embed").start()
    embedder.behaviour.max_model_len = 8192
    document = work / "big.txt"
    write_document(document, mib)
    gw = await start_gateway_process(
        {
            "GATEWAY_UPSTREAMS": embedder.url,
            "GATEWAY_EMBEDDING_MODEL": "bench-embed",
            "GATEWAY_DATABASE_URL": server.get_uri(),
            "GATEWAY_ADMIN_KEY": ADMIN,
            "GATEWAY_MAX_CHUNKS_PER_FILE": "10000000",
            "GATEWAY_ACCESS_LOG": "false",
        },
        work,
        ready_path="/readyz",
        timeout=60,
    )
    try:
        baseline = gw.rss_bytes()
        async with httpx.AsyncClient(
            base_url=gw.url, timeout=600, headers={"authorization": f"Bearer {ADMIN}"}
        ) as client:
            began = time.perf_counter()
            with Sampler(gw.rss_bytes) as upload, document.open("rb") as source:
                uploaded = await client.post(
                    "/v1/files",
                    files={"file": ("big.txt", source)},
                    data={"purpose": "assistants"},
                )
            uploaded.raise_for_status()
            upload_s = time.perf_counter() - began
            store = (await client.post("/v1/vector_stores", json={"name": "m"})).json()["id"]
            file_id = uploaded.json()["id"]
            began = time.perf_counter()
            with Sampler(gw.rss_bytes) as ingestion:
                await client.post(
                    f"/v1/vector_stores/{store}/files",
                    json={
                        "file_id": file_id,
                        "chunking_strategy": {
                            "type": "static",
                            "static": {
                                "max_chunk_size_tokens": chunk_tokens,
                                "chunk_overlap_tokens": 0,
                            },
                        },
                    },
                )
                while True:
                    state = (await client.get(f"/v1/vector_stores/{store}/files/{file_id}")).json()
                    if state["status"] != "in_progress":
                        break
                    await asyncio.sleep(0.5)
            ingest_s = time.perf_counter() - began
        mb = 1 / (1 << 20)
        print(
            f"{mib} MiB of text, {chunk_tokens}-token chunks: upload {upload_s:.1f} s, "
            f"ingestion {ingest_s:.1f} s ({state['status']}, "
            f"{embedder.seen.inputs} chunks embedded)\n"
            f"RSS baseline {baseline * mb:.0f} MiB, peak during upload {upload.peak * mb:.0f} "
            f"MiB (+{(upload.peak - baseline) * mb:.0f}), peak during ingestion "
            f"{ingestion.peak * mb:.0f} MiB (+{(ingestion.peak - baseline) * mb:.0f})"
        )
    finally:
        await gw.stop()
        await embedder.stop()
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--chunk-tokens", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.mib, args.chunk_tokens))
