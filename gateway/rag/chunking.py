"""Chunking strategies as OpenAI defines them, and splitting text into token-sized chunks.

Pure: token counts come from an estimate per word that the caller may calibrate with the
embedding model's own tokenizer (`calibration` = real tokens / estimated tokens for the
document, measured through the engine's `/tokenize`). Without a tokenizer the estimate is
about 4 characters per token (OpenAI's rule of thumb for English), at least 1 per word.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096
CHARS_PER_TOKEN = 4.0

_PIECE = re.compile(r"\S+\s*")
# A chunk that is full looks back this far (as a share of its size) for a better break.
_LOOKBACK = 0.25


@dataclass(frozen=True, slots=True)
class ChunkingStrategy:
    type: str  # "auto" | "static"
    max_tokens: int = AUTO_MAX_TOKENS
    overlap_tokens: int = AUTO_OVERLAP_TOKENS

    def view(self) -> dict[str, Any]:
        """The object OpenAI returns on a vector store file (auto is reported as static)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_tokens,
                "chunk_overlap_tokens": self.overlap_tokens,
            },
        }

    def capped(self, limit: int | None) -> ChunkingStrategy:
        """Fit the embedding model's input limit, keeping overlap at most half a chunk."""
        if limit is None or limit >= self.max_tokens:
            return self
        size = max(1, limit)
        return ChunkingStrategy(self.type, size, min(self.overlap_tokens, size // 2))


AUTO = ChunkingStrategy("auto")


def parse_strategy(value: Any, param: str = "chunking_strategy") -> ChunkingStrategy:
    """Validate a `chunking_strategy` request field; None or `{"type": "auto"}` is auto."""
    if value is None:
        return AUTO
    if not isinstance(value, dict):
        raise InvalidRequest("chunking_strategy must be an object.", param=param)
    kind = value.get("type")
    if kind == "auto":
        return AUTO
    if kind != "static":
        raise InvalidRequest(
            f"Invalid chunking_strategy type {kind!r}: expected 'auto' or 'static'.",
            param=f"{param}.type",
        )
    static = value.get("static")
    if not isinstance(static, dict):
        raise InvalidRequest(
            "A static chunking_strategy needs a `static` object.", param=f"{param}.static"
        )
    size = static.get("max_chunk_size_tokens")
    overlap = static.get("chunk_overlap_tokens")
    for name, number in (("max_chunk_size_tokens", size), ("chunk_overlap_tokens", overlap)):
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidRequest(f"{name} must be an integer.", param=f"{param}.static.{name}")
    assert isinstance(size, int) and isinstance(overlap, int)
    if not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
        raise InvalidRequest(
            f"max_chunk_size_tokens must be between {MIN_CHUNK_TOKENS} and "
            f"{MAX_CHUNK_TOKENS}, got {size}.",
            param=f"{param}.static.max_chunk_size_tokens",
        )
    if overlap < 0 or overlap > size // 2:
        raise InvalidRequest(
            "chunk_overlap_tokens must be non-negative and must not exceed half of "
            f"max_chunk_size_tokens ({size // 2}), got {overlap}.",
            param=f"{param}.static.chunk_overlap_tokens",
        )
    return ChunkingStrategy("static", size, overlap)


def estimate_tokens(text: str) -> float:
    """The uncalibrated estimate for a span of text (what `calibration` scales)."""
    return sum(_piece_tokens(p) for p in _PIECE.findall(text))


def _piece_tokens(piece: str) -> float:
    return max(1.0, len(piece.rstrip()) / CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str
    start: int  # character offsets into the parsed document
    end: int
    tokens: int  # estimated


def _pieces(text: str, max_tokens: float, scale: float) -> list[tuple[int, int, float]]:
    """(start, end, tokens) per word with its trailing space; words longer than a chunk
    (minified code, base64) are cut into chunk-sized runs of characters."""
    out: list[tuple[int, int, float]] = []
    step = max(1, int(max_tokens * CHARS_PER_TOKEN / scale))
    for match in _PIECE.finditer(text):
        start, end = match.span()
        cost = _piece_tokens(match.group()) * scale
        if cost <= max_tokens:
            out.append((start, end, cost))
            continue
        for cut in range(start, end, step):
            part = text[cut : min(end, cut + step)]
            out.append((cut, min(end, cut + step), _piece_tokens(part) * scale))
    return out


def _break_quality(text: str, end: int) -> int:
    """How good a place the end of a piece is to end a chunk: paragraph > line > sentence."""
    before = text[max(0, end - 3) : end]
    if "\n\n" in before:
        return 3
    if "\n" in before:
        return 2
    stripped = before.rstrip()
    return 1 if stripped.endswith((".", "!", "?", ";", ":")) else 0


def chunk_text(text: str, strategy: ChunkingStrategy, calibration: float = 1.0) -> list[TextChunk]:
    """Split `text` into chunks of at most `max_tokens` (estimated) that overlap by about
    `overlap_tokens`, ending at paragraph, line or sentence breaks where one is near."""
    scale = calibration if calibration > 0 and math.isfinite(calibration) else 1.0
    limit = float(strategy.max_tokens)
    pieces = _pieces(text, limit, scale)
    chunks: list[TextChunk] = []
    first = 0
    while first < len(pieces):
        total = 0.0
        last = first
        while last < len(pieces) and total + pieces[last][2] <= limit:
            total += pieces[last][2]
            last += 1
        last = max(last, first + 1)  # a piece always fits: _pieces cut the long ones
        if last < len(pieces):
            last = _better_end(text, pieces, first, last)
        start, end = pieces[first][0], pieces[last - 1][1]
        tokens = sum(p[2] for p in pieces[first:last])
        body = text[start:end].strip()
        if body:
            chunks.append(TextChunk(body, start, end, max(1, round(tokens))))
        if last >= len(pieces):
            break
        first = _overlap_start(pieces, first, last, strategy.overlap_tokens)
    return chunks


def _better_end(text: str, pieces: list[tuple[int, int, float]], first: int, last: int) -> int:
    """Move the end back to the best break within the lookback window, if there is one."""
    window = max(1, int((last - first) * _LOOKBACK))
    best, best_quality = last, _break_quality(text, pieces[last - 1][1])
    for candidate in range(last - 1, max(first + 1, last - window) - 1, -1):
        quality = _break_quality(text, pieces[candidate - 1][1])
        if quality > best_quality:
            best, best_quality = candidate, quality
    return best


def _overlap_start(
    pieces: list[tuple[int, int, float]], first: int, last: int, overlap: int
) -> int:
    """The first piece of the next chunk: far enough back to repeat `overlap` tokens, but
    always past this chunk's start so chunking makes progress."""
    if overlap <= 0:
        return last
    total = 0.0
    start = last
    while start - 1 > first and total + pieces[start - 1][2] <= overlap:
        start -= 1
        total += pieces[start][2]
    return start
