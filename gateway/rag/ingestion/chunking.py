"""Chunking strategies as OpenAI defines them, and the token estimate chunks are sized by
(gateway.rag.ingestion.splitting splits the text).

Pure: token counts come from an estimate per word that the caller may calibrate with the
embedding model's own tokenizer (`calibration` = real tokens / estimated tokens for the
document, measured through the engine's `/tokenize`). Without a tokenizer the estimate is
about 4 characters per token (OpenAI's rule of thumb for English), at least 1 per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from gateway.errors import InvalidRequest

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096
CHARS_PER_TOKEN = 4.0

# A word and the space after it: the unit the estimate counts and chunks are made of.
PIECE = re.compile(r"\S+\s*")
_WORD = re.compile(r"\S+")
# A word counts as at least this many characters: 1 token.
_MIN_WORD_CHARS = int(CHARS_PER_TOKEN)


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
    """The uncalibrated estimate for a span of text (what `calibration` scales): the sum
    of `piece_tokens` over its pieces. Each term is a whole number of characters over
    CHARS_PER_TOKEN (4: exact in binary), so summing the characters first gives the same
    float, without a Python step per word (this runs over every document's first 20,000
    characters)."""
    chars = sum(map(max, repeat(_MIN_WORD_CHARS), map(len, _WORD.findall(text))))
    return chars / CHARS_PER_TOKEN


def piece_tokens(piece: str) -> float:
    return max(1.0, len(piece.rstrip()) / CHARS_PER_TOKEN)
