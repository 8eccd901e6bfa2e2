"""A real corpus with real embeddings for the search benchmarks, embedded once and cached.

The text is what every Python installation carries: the docstrings of the standard
library's modules, classes and functions (read from the `.py` sources with `ast`, nothing
is imported), one document per module, and the help topics of `pydoc_data.topics`. Each
document is chunked as the gateway chunks (gateway.rag.ingestion.chunking, a static
strategy: `CHUNK_TOKENS` with `OVERLAP_TOKENS` overlap) and embedded with all-MiniLM-L6-v2
on a real vLLM CPU engine started as `gateway up` starts it. The queries are the first
lines of function docstrings (short, question-like sentences), embedded the same way.

The vectors are cached under ~/.cache/gateway-bench (outside the repository), keyed by
the corpus's size and chunking, so the engine runs once per machine:

    python -m benchmarks.rag_corpus              # embed (or report the cache)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import random
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from gateway.local.engine import Engine, EngineSpec, free_port
from gateway.local.models import prepare_embedding_model
from gateway.rag.ingestion.chunking import ChunkingStrategy
from gateway.rag.ingestion.splitting import chunk_text

CACHE = Path.home() / ".cache" / "gateway-bench"
CHUNK_TOKENS = 128
OVERLAP_TOKENS = 32
MAX_CHUNKS = 12_000
QUERIES = 300
BATCH = 64
# Documents too short to say anything (a one-line module docstring) are left out.
MIN_DOC_CHARS = 200
MAX_INPUT_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    docs: list[int]  # the document each chunk comes from
    vectors: np.ndarray  # (chunks, 384) float32, unit length
    queries: list[str]
    query_vectors: np.ndarray


def _docstrings(source: str) -> tuple[list[str], list[str]]:
    """A module's docstrings in source order, and its functions' first lines."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return [], []
    parts: list[str] = []
    firsts: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if not doc:
                continue
            title = "" if isinstance(node, ast.Module) else f"{node.name}: "
            parts.append(title + doc)
            first = doc.strip().split("\n")[0].strip()
            if isinstance(node, ast.FunctionDef) and 30 <= len(first) <= 160:
                firsts.append(first)
    return parts, firsts


def documents() -> tuple[list[str], list[str]]:
    """The corpus's documents and candidate queries, in a stable order."""
    import pydoc_data.topics

    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    firsts: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("site-packages/", "test/", "idlelib/idle_test/")) or "/tests/" in rel:
            continue
        parts, found = _docstrings(path.read_text(encoding="utf-8", errors="replace"))
        text = "\n\n".join(parts)
        if len(text) >= MIN_DOC_CHARS:
            docs.append(f"{rel}\n\n{text}")
            firsts += found
    docs += [pydoc_data.topics.topics[key] for key in sorted(pydoc_data.topics.topics)]
    return docs, firsts


def chunked(docs: list[str]) -> tuple[list[str], list[int]]:
    strategy = ChunkingStrategy("static", CHUNK_TOKENS, OVERLAP_TOKENS)
    texts: list[str] = []
    owners: list[int] = []
    for i, doc in enumerate(docs):
        for chunk in chunk_text(doc, strategy):
            texts.append(chunk.text)
            owners.append(i)
    return texts, owners


def _embed(client: httpx.Client, model: str, texts: list[str], label: str) -> np.ndarray:
    out: list[list[float]] = []
    began = time.monotonic()
    for start in range(0, len(texts), BATCH):
        reply = client.post(
            "/v1/embeddings",
            json={
                "model": model,
                "input": texts[start : start + BATCH],
                # The estimate sizes chunks; code-heavy text can run past MiniLM's 256.
                "truncate_prompt_tokens": MAX_INPUT_TOKENS,
            },
        )
        reply.raise_for_status()
        out += [item["embedding"] for item in reply.json()["data"]]
        if (start // BATCH) % 20 == 0:
            rate = len(out) / max(1e-9, time.monotonic() - began)
            print(f"  {label}: {len(out):,}/{len(texts):,} ({rate:.0f}/s)", flush=True)
    vectors = np.asarray(out, dtype=np.float32)
    normed: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normed


def _cache_path(texts: list[str], queries: list[str]) -> Path:
    digest = hashlib.sha256("\x00".join([*texts, "--", *queries]).encode()).hexdigest()[:16]
    return CACHE / f"stdlib-minilm-{len(texts)}-{digest}.npz"


def load(max_chunks: int = MAX_CHUNKS, engine_url: str | None = None) -> Corpus:
    """The corpus with its vectors; embeds it first (1-10 min) unless cached."""
    docs, firsts = documents()
    texts, owners = chunked(docs)
    texts, owners = texts[:max_chunks], owners[:max_chunks]
    queries = random.Random(15).sample(sorted(set(firsts)), QUERIES)
    path = _cache_path(texts, queries)
    if not path.exists():
        vectors, query_vectors = embed_with_engine(texts, queries, engine_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, vectors=vectors, queries=query_vectors)
    stored = np.load(path)
    return Corpus(texts, owners, stored["vectors"], queries, stored["queries"])


def embed_with_engine(
    texts: list[str], queries: list[str], engine_url: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Through `engine_url` (an engine serving all-minilm-l6-v2), or an engine started
    here as `gateway up` starts it and stopped after."""
    model = prepare_embedding_model()
    if engine_url is not None:
        return _embed_all(engine_url, model.name, texts, queries)
    spec = EngineSpec(model.path, model.name, free_port(), runner="pooling")
    CACHE.mkdir(parents=True, exist_ok=True)
    with Engine(spec, CACHE / "engine.log") as engine:
        took = engine.wait_ready(600)
        print(f"  engine ready in {took:.0f} s", flush=True)
        return _embed_all(spec.base_url, model.name, texts, queries)


def _embed_all(
    url: str, model: str, texts: list[str], queries: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    with httpx.Client(base_url=url, timeout=600) as client:
        began = time.monotonic()
        vectors = _embed(client, model, texts, "chunks")
        print(f"  {len(texts):,} chunks embedded in {time.monotonic() - began:.0f} s")
        return vectors, _embed(client, model, queries, "queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-chunks", type=int, default=MAX_CHUNKS)
    parser.add_argument("--stats", action="store_true", help="sizes only, no embedding")
    parser.add_argument("--engine-url", help="a running engine serving all-minilm-l6-v2")
    args = parser.parse_args()
    if args.stats:
        docs, firsts = documents()
        texts, _ = chunked(docs)
        chars = sum(len(t) for t in texts)
        print(
            f"{len(docs):,} documents, {len(texts):,} chunks, {chars / 1e6:.1f} MB of text, "
            f"{len(set(firsts)):,} query candidates"
        )
        return
    began = time.monotonic()
    corpus = load(args.max_chunks, args.engine_url)
    print(
        f"{len(corpus.texts):,} chunks x {corpus.vectors.shape[1]}-d and "
        f"{len(corpus.queries)} queries ready in {time.monotonic() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
