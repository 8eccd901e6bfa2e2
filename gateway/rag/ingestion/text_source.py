"""A spooled file's text, block by block, for chunking.

Plain text (Markdown, code, logs, CSV...) is decoded as it streams from the spool file,
never held whole: one pass first tells whether the whole file is UTF-8 (as
`parse_document` decides), a second decodes. PDF, HTML and JSON, whose parsers need the
whole document, are parsed in the sandbox (gateway.rag.ingestion.sandbox) into a second
spool file, whose text then streams the same way. Either way the blocks are what
`parse_document` would have returned, cut in pieces (see parsing.TextCleaner).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator

from gateway.rag.ingestion.parsing import (
    SNIFF_BYTES,
    Kind,
    TextCleaner,
    UnparsableFile,
    classify,
    is_html_text,
    text_encoding,
)
from gateway.rag.ingestion.sandbox import ParseLimits, parse_in_child
from gateway.rag.ingestion.spool import Spool, spool_file

# Characters of decoded text that tell whether a "text" file is HTML after all.
_HTML_SNIFF = 1024


async def _head(source: Spool) -> bytes:
    async for block in source.blocks(SNIFF_BYTES):
        return block
    return b""


async def _valid_utf8(source: Spool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        async for block in source.blocks():
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


async def _decoded(source: Spool, encoding: str, filename: str) -> AsyncGenerator[str, None]:
    errors = "replace" if encoding == "cp1252" else "strict"
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    try:
        async for block in source.blocks():
            yield decoder.decode(block)
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnparsableFile(
            "invalid_file", f"{filename}: not valid {encoding} text ({exc.reason})."
        ) from None


async def document_text(
    filename: str, source: Spool, limits: ParseLimits, spool_dir: str | None
) -> AsyncGenerator[str, None]:
    """The text of the file in `source`, cleaned, in blocks; UnparsableFile if none."""
    cleaner = TextCleaner()
    head = await _head(source)
    if classify(filename, head) is Kind.TEXT:
        encoding = text_encoding(filename, head, await _valid_utf8(source))
        blocks = _decoded(source, encoding, filename)
        first = await anext(blocks, "")
        if not is_html_text(filename, first[:_HTML_SNIFF]):
            yield cleaner.clean(first)
            async for block in blocks:
                yield cleaner.clean(block)
            return
        await blocks.aclose()
    with spool_file(spool_dir, "gateway-text-") as text:
        await parse_in_child(filename, source, text, limits)
        async for block in _decoded(text, "utf-8", filename):
            yield cleaner.clean(block)
