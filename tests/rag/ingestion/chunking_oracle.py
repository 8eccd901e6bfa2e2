"""The chunker as it was before it streamed (a whole text in, every chunk out), kept as
the reference `ChunkStream` must agree with on any text split any way."""

from __future__ import annotations

import math

from gateway.rag.ingestion.chunking import CHARS_PER_TOKEN, PIECE, ChunkingStrategy, piece_tokens

_LOOKBACK = 0.25


def _pieces(text: str, max_tokens: float, scale: float) -> list[tuple[int, int, float]]:
    """(start, end, tokens) per word with its trailing space; words longer than a chunk
    (minified code, base64) are cut into chunk-sized runs of characters."""
    out: list[tuple[int, int, float]] = []
    step = max(1, int(max_tokens * CHARS_PER_TOKEN / scale))
    for match in PIECE.finditer(text):
        start, end = match.span()
        cost = piece_tokens(match.group()) * scale
        if cost <= max_tokens:
            out.append((start, end, cost))
            continue
        for cut in range(start, end, step):
            part = text[cut : min(end, cut + step)]
            out.append((cut, min(end, cut + step), piece_tokens(part) * scale))
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


def oracle_chunks(
    text: str, strategy: ChunkingStrategy, calibration: float = 1.0
) -> list[tuple[str, int, int, int]]:
    """Split `text` into chunks of at most `max_tokens` (estimated) that overlap by about
    `overlap_tokens`, ending at paragraph, line or sentence breaks where one is near."""
    scale = calibration if calibration > 0 and math.isfinite(calibration) else 1.0
    limit = float(strategy.max_tokens)
    pieces = _pieces(text, limit, scale)
    chunks: list[tuple[str, int, int, int]] = []
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
            chunks.append((body, start, end, max(1, round(tokens))))
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
