"""Splitting text into token-sized chunks as it arrives, holding about one chunk of it.

Pure. `ChunkStream.feed` takes the parsed text a block at a time and returns the chunks
that are final; `finish` returns the rest. The chunks are exactly those of
`chunk_text(whole_text)`: a chunk depends only on the words from its first one to the
one that no longer fits, so once that word has arrived the chunk is settled, and
everything before the next chunk's first word can be dropped.

A chunk holds at most `max_tokens` (estimated, see gateway.rag.ingestion.chunking),
overlaps the previous one by about `overlap_tokens`, and ends at a paragraph, line or
sentence break when one is within the last quarter of it. Words longer than a chunk (minified code,
base64) are cut into chunk-sized runs of characters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gateway.rag.ingestion.chunking import CHARS_PER_TOKEN, PIECE, ChunkingStrategy, piece_tokens

# A chunk that is full looks back this far (as a share of its size) for a better break.
_LOOKBACK = 0.25
# Text kept before the next chunk's first word: what `_quality_at` may look at.
_CONTEXT = 3
# The rest of a word being cut, and its trailing space (possibly nothing yet).
_REST = re.compile(r"\S*\s*")

Piece = tuple[int, int, float]  # (start, end, tokens): a word and its trailing space


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str
    start: int  # character offsets into the parsed document
    end: int
    tokens: int  # estimated


def _quality(before: str) -> int:
    """How good a place the end of `before` (the 3 characters before a piece's end) is to
    end a chunk: paragraph > line > sentence."""
    if "\n\n" in before:
        return 3
    if "\n" in before:
        return 2
    stripped = before.rstrip()
    return 1 if stripped.endswith((".", "!", "?", ";", ":")) else 0


def _overlap_start(pieces: list[Piece], first: int, last: int, overlap: int) -> int:
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


class ChunkStream:
    def __init__(self, strategy: ChunkingStrategy, calibration: float = 1.0) -> None:
        scale = calibration if calibration > 0 and math.isfinite(calibration) else 1.0
        self._scale = scale
        self._limit = float(strategy.max_tokens)
        self._overlap = strategy.overlap_tokens
        self._step = max(1, int(self._limit * CHARS_PER_TOKEN / scale))
        self._text = ""  # the text kept; it starts at document offset `_base`
        self._base = 0
        # Settled pieces from the next chunk's first one on (document offsets).
        self._pieces: list[Piece] = []
        self._first = 0
        self._scan = 0  # where the text not yet cut into pieces starts
        # A word too long for a chunk, already cut up to here (None: not in such a word).
        self._cut_from: int | None = None

    def feed(self, text: str) -> list[TextChunk]:
        self._text += text
        self._split(final=False)
        return self._chunks(final=False)

    def finish(self) -> list[TextChunk]:
        self._split(final=True)
        chunks = self._chunks(final=True)
        self._text, self._pieces = "", []
        return chunks

    @property
    def buffered(self) -> int:
        """Characters held: about one chunk plus the block being read."""
        return len(self._text)

    # -- words -------------------------------------------------------------------------

    def _split(self, final: bool) -> None:
        text, base = self._text, self._base
        position = self._scan - base
        if self._cut_from is not None:  # the rest of a word being cut, and its space
            rest = _REST.match(text, position)
            assert rest is not None  # `\S*\s*` matches anywhere, if only ""
            if rest.end() == len(text) and not final:
                self._scan = self._unsettled(self._cut_from, rest.group())
                return
            self._cut(self._cut_from, rest.end() + base, rest.end() + base)
            self._cut_from = None
            position = rest.end()
        matches = PIECE.finditer(text, position)
        match = next(matches, None)
        while match is not None:
            following = next(matches, None)
            start, end = match.start() + base, match.end() + base
            if following is None and not final and match.end() == len(text):
                # The text may go on: this word (or the space after it) is not settled.
                self._scan = self._unsettled(start, match.group())
                return
            self._settled(start, end, match.group())
            match = following
        self._scan = base + len(text)

    def _settled(self, start: int, end: int, word: str) -> None:
        cost = piece_tokens(word) * self._scale
        if cost <= self._limit:
            self._pieces.append((start, end, cost))
        else:
            self._cut(start, end, end)

    def _unsettled(self, start: int, word: str) -> int:
        """Settle what is sure of an unfinished word; where to scan from next time."""
        origin = self._cut_from if self._cut_from is not None else start
        solid = start + len(word.rstrip())  # the word's characters seen so far
        long_word = self._cut_from is not None or (
            max(1.0, (solid - origin) / CHARS_PER_TOKEN) * self._scale > self._limit
        )
        if not long_word:
            return start
        # Runs that end within the characters seen are the same however the word ends.
        settled = origin + (solid - origin) // self._step * self._step
        if settled > origin:
            self._cut(origin, settled, settled)
        self._cut_from = settled
        return settled

    def _cut(self, start: int, end: int, stop: int) -> None:
        """Chunk-sized runs of characters from `start` (a word's start, or a run boundary)."""
        for cut in range(start, stop, self._step):
            run_end = min(end, cut + self._step)
            part = self._slice(cut, run_end)
            self._pieces.append((cut, run_end, piece_tokens(part) * self._scale))

    # -- chunks ------------------------------------------------------------------------

    def _chunks(self, final: bool) -> list[TextChunk]:
        pieces, limit = self._pieces, self._limit
        out: list[TextChunk] = []
        while self._first < len(pieces):
            first = self._first
            total = 0.0
            last = first
            while last < len(pieces) and total + pieces[last][2] <= limit:
                total += pieces[last][2]
                last += 1
            last = max(last, first + 1)  # a piece always fits: long words were cut
            if last >= len(pieces) and not final:
                break  # the next word decides where this chunk ends
            if last < len(pieces):
                last = self._better_end(first, last)
            start, end = pieces[first][0], pieces[last - 1][1]
            tokens = sum(p[2] for p in pieces[first:last])
            body = self._slice(start, end).strip()
            if body:
                out.append(TextChunk(body, start, end, max(1, round(tokens))))
            if last >= len(pieces):
                self._first = len(pieces)
                break
            self._first = _overlap_start(pieces, first, last, self._overlap)
        self._drop_done()
        return out

    def _better_end(self, first: int, last: int) -> int:
        """Move the end back to the best break within the lookback window, if there is one."""
        pieces = self._pieces
        window = max(1, int((last - first) * _LOOKBACK))
        best, best_quality = last, self._quality_at(pieces[last - 1][1])
        for candidate in range(last - 1, max(first + 1, last - window) - 1, -1):
            quality = self._quality_at(pieces[candidate - 1][1])
            if quality > best_quality:
                best, best_quality = candidate, quality
        return best

    def _quality_at(self, end: int) -> int:
        return _quality(self._slice(max(0, end - _CONTEXT), end))

    # -- the text kept -----------------------------------------------------------------

    def _slice(self, start: int, end: int) -> str:
        return self._text[start - self._base : end - self._base]

    def _drop_done(self) -> None:
        """Forget the pieces and text before the next chunk's first piece."""
        if self._first:
            del self._pieces[: self._first]
            self._first = 0
        head = self._pieces[0][0] if self._pieces else self._scan
        if self._cut_from is not None:
            head = min(head, self._cut_from)
        keep = max(self._base, min(head, self._scan) - _CONTEXT)
        if keep - self._base > len(self._text) // 2:  # copy the rest only when worth it
            self._text = self._text[keep - self._base :]
            self._base = keep


def chunk_text(text: str, strategy: ChunkingStrategy, calibration: float = 1.0) -> list[TextChunk]:
    """Split a whole `text` (the same chunks as streaming it through `ChunkStream`)."""
    stream = ChunkStream(strategy, calibration)
    return stream.feed(text) + stream.finish()
