"""The pipeline of one ingestion run: text → chunks → embedded batches → staged rows.

Memory holds a block of text, about one chunk window and a few batches, whatever the
size of the file. Each batch is embedded through gateway.rag.metering for the key that
attached the file; a batch refused by the key's rate limits waits as long as the limiter
says and is tried again, while the job is still ours. Up to
GATEWAY_EMBEDDING_PARALLEL_BATCHES batches (no more than the key's max_parallel) are
embedded at once, while the chunker goes on and earlier batches are staged, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import RateLimited
from gateway.rag.embeddings import count_tokens, max_input_tokens
from gateway.rag.ingestion import jobs
from gateway.rag.ingestion.chunking import ChunkingStrategy, estimate_tokens
from gateway.rag.ingestion.sandbox import ParseLimits
from gateway.rag.ingestion.splitting import ChunkStream, TextChunk
from gateway.rag.ingestion.spool import Spool
from gateway.rag.ingestion.text_source import document_text
from gateway.rag.metering import Payer, embed_for
from gateway.rag.resources import Retrieval

# Calibrating the token estimate on a sample is enough: documents are fairly uniform.
CALIBRATION_CHARS = 20_000
# A ratio this far from 1 means the sample is odd; bounded, a chunk's window of text
# (what the chunker holds) stays bounded too.
_CALIBRATION_RANGE = (0.05, 20.0)
# Room for the special tokens the model adds, and for the estimate running a little long.
_LIMIT_SHARE = 0.9
# The longest a rate-limited batch sleeps before checking again that the job is ours.
_MAX_WAIT_S = 30.0
# The guard's reservation estimate for an embedding: its input's bytes / 4.
_BYTES_PER_TOKEN = 4


class Stopped(Exception):
    """The job is no longer ours (cancelled, detached, deleted)."""


class TooManyChunks(Exception):
    """More chunks than GATEWAY_MAX_CHUNKS_PER_FILE."""


class ChunkOverLimit(Exception):
    """One chunk alone needs more tokens than the paying key's tpm allows."""


class MixedDimensions(Exception):
    """The engine returned vectors of different lengths for one file."""


async def calibration(rag: Retrieval, sample: str) -> float:
    """Real tokens / estimated tokens on a sample, by the embedding model's tokenizer."""
    real = await count_tokens(rag, sample)
    estimate = estimate_tokens(sample)
    if not real or estimate <= 0:
        return 1.0
    low, high = _CALIBRATION_RANGE
    return min(high, max(low, real / estimate))


def retry_after_s(error: RateLimited) -> float:
    """What the limiter asked the client to wait, from the 429's headers."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = error.headers.get(name)
        if value is not None:
            with contextlib.suppress(ValueError):
                return max(0.05, float(value) * scale)
    return 1.0


class Run:
    """One run of a job; its staged chunks carry `self.id`."""

    def __init__(
        self,
        rag: Retrieval,
        db: AsyncEngine,
        job: jobs.Job,
        payer: Payer,
        still_ours: Callable[[], bool],
    ) -> None:
        self.rag = rag
        self.settings = rag.settings
        self.db = db
        self.job = job
        self.payer = payer
        self.still_ours = still_ours
        self.id = uuid.uuid4().hex
        self.count = 0  # chunks embedded: staged, or in `tail`
        self.usage = 0  # bytes of text and vectors, as a vector store file reports them
        self.dims: int | None = None
        # The last batch is not staged: `jobs.complete` inserts it where it moves the rest,
        # so a file of one batch (most of them) is written once, as it was before staging.
        self.tail: tuple[list[str], list[list[float]]] = ([], [])
        # The tokens a batch may reserve: a key's whole tpm at most, or it never fits.
        self.batch_tokens = payer.key.tpm if payer.key is not None else None

    @property
    def parallel(self) -> int:
        """Batches embedded at once: more than the key's max_parallel would only be refused."""
        limit = self.settings.embedding_parallel_batches
        key = self.payer.key
        if key is not None and key.max_parallel is not None:
            limit = min(limit, max(1, key.max_parallel))
        return limit

    async def embed_and_stage(self, filename: str, source: Spool) -> None:
        # Batches being embedded, oldest first; each is staged (or kept as the tail) in order.
        embedding: deque[tuple[list[str], asyncio.Task[list[list[float]]]]] = deque()
        try:
            batch: list[str] = []
            size = 0  # the batch's bytes: the guard reserves size / 4 tokens for it
            seen = 0
            budget = self.batch_tokens
            async for chunk in self._chunks(filename, source):
                seen += 1
                if seen > self.settings.max_chunks_per_file:
                    raise TooManyChunks
                length = len(chunk.text.encode())
                if budget is not None and length // _BYTES_PER_TOKEN > budget:
                    raise ChunkOverLimit
                if batch and (
                    len(batch) >= self.settings.embedding_batch_size
                    or (budget is not None and (size + length) // _BYTES_PER_TOKEN > budget)
                ):
                    await self._send(embedding, batch)
                    batch, size = [], 0
                batch.append(chunk.text)
                size += length
            if batch:
                await self._send(embedding, batch)
            while embedding:
                texts, task = embedding.popleft()
                await self._settle(texts, await task, last=not embedding)
        finally:
            for _, task in embedding:
                task.cancel()
            await asyncio.gather(*(task for _, task in embedding), return_exceptions=True)

    async def _send(
        self,
        embedding: deque[tuple[list[str], asyncio.Task[list[list[float]]]]],
        texts: list[str],
    ) -> None:
        """Start embedding `texts`, once fewer than `parallel` batches are in flight; a
        batch that finishes to make room is staged (it is not the last: `texts` follows)."""
        while len(embedding) >= self.parallel:
            done, task = embedding.popleft()
            await self._settle(done, await task, last=False)
        embedding.append((texts, asyncio.create_task(self._embed(texts))))

    async def _chunks(self, filename: str, source: Spool) -> AsyncIterator[TextChunk]:
        limits = ParseLimits(self.settings.parse_timeout_s, self.settings.parse_memory_mb << 20)
        blocks = document_text(filename, source, limits, self.settings.spool_dir)
        async with contextlib.aclosing(blocks):
            head: list[str] = []  # the first blocks, until the calibration sample is in
            stream: ChunkStream | None = None
            async for block in blocks:
                if stream is None:
                    head.append(block)
                    if sum(map(len, head)) < CALIBRATION_CHARS:
                        continue
                    stream = await self._stream("".join(head)[:CALIBRATION_CHARS])
                    block, head = "".join(head), []
                for chunk in await asyncio.to_thread(stream.feed, block):
                    yield chunk
            if stream is None:
                whole = "".join(head)
                stream = await self._stream(whole[:CALIBRATION_CHARS])
                for chunk in await asyncio.to_thread(stream.feed, whole):
                    yield chunk
            for chunk in await asyncio.to_thread(stream.finish):
                yield chunk

    async def _stream(self, sample: str) -> ChunkStream:
        limit = max_input_tokens(self.rag)
        strategy: ChunkingStrategy = self.job.strategy.capped(
            int(limit * _LIMIT_SHARE) if limit else None
        )
        scale = await calibration(self.rag, sample) if sample.strip() else 1.0
        return ChunkStream(strategy, scale)

    async def _settle(self, texts: list[str], vectors: list[list[float]], last: bool) -> None:
        """An embedded batch, in the file's order: staged, or kept as the tail if last."""
        dims = {len(v) for v in vectors}
        if len(dims) != 1 or (self.dims is not None and dims != {self.dims}):
            raise MixedDimensions
        self.dims = dims.pop()
        if last:
            self.tail = (texts, vectors)
        else:
            await jobs.stage(self.db, self.job, self.id, self.count, texts, vectors)
        self.count += len(texts)
        self.usage += sum(len(t.encode()) for t in texts) + 2 * self.dims * len(texts)

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        while True:
            if not self.still_ours():
                raise Stopped
            try:
                return await embed_for(self.rag, self.payer, texts)
            except RateLimited as exc:
                if not exc.retryable:  # out of quota, or larger than a limit: no wait helps
                    raise
                await asyncio.sleep(min(_MAX_WAIT_S, retry_after_s(exc)))
