"""The child process that parses one untrusted document (PDF, HTML, JSON) into text.

Run by gateway.rag.ingestion.sandbox as `python -m gateway.rag.ingestion.parse_child`,
never imported by the gateway itself. Before it reads a byte of the document it limits
itself: address space (a decompression bomb or a parser's blow-up ends in MemoryError,
here), CPU time, the size of what it may write, no core file. It reads the document from
an inherited file descriptor, writes the text as UTF-8 to another, and reports on stdout
as one JSON line: {"ok": true} or {"code": ..., "message": ...}. Whatever a document does
to it, it can only fail itself.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import resource
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from gateway.rag.ingestion.parsing import (
    SNIFF_BYTES,
    JsonLines,
    UnparsableFile,
    is_json_lines,
    is_pdf,
    parse_document,
    pdf_pages,
    text_encoding,
)

# pypdf's own decompression and stream limits (pypdf.Configuration, 75 MB each by default)
# are kept below a share of the memory limit, so that one stream alone cannot use it all.
_PYPDF_SIZE_FIELDS = (
    "maximum_declared_stream_length",
    "array_based_stream_maximum_output_length",
    "jbig2_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "zlib_maximum_output_length",
    "brotli_maximum_output_length",
    "image_maximum_buffer_size",
)
_WRITE_BYTES = 1 << 20


def limit_self(memory_bytes: int, cpu_s: int, output_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    # The text is checked against `output_bytes` as it is written; this is the backstop.
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes + _WRITE_BYTES,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A parser has no business starting processes (not enforced for root).
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def configure_pypdf(memory_bytes: int) -> None:
    from pypdf import Configuration, overwrite_configuration

    defaults = Configuration()
    cap = max(1 << 20, memory_bytes // 8)
    limits: dict[str, Any] = {
        name: min(getattr(defaults, name), cap) for name in _PYPDF_SIZE_FIELDS
    }
    # Text extraction needs no images: never start an external decoder for one.
    overwrite_configuration(jbig2dec_binary=None, **limits)


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(fd, "rb", closefd=False) as source:
        return source.read()


def _blocks(fd: int) -> Iterator[bytes]:
    position = 0
    while block := os.pread(fd, _WRITE_BYTES, position):
        position += len(block)
        yield block


class _Output:
    """The text, written as UTF-8 as it comes, up to `limit` bytes."""

    def __init__(self, fd: int, limit: int, filename: str) -> None:
        self.out: BinaryIO = os.fdopen(fd, "wb", closefd=False)
        self.limit = limit
        self.filename = filename
        self.written = 0

    def write(self, text: str) -> None:
        for start in range(0, len(text), _WRITE_BYTES):
            data = text[start : start + _WRITE_BYTES].encode("utf-8", "replace")
            self.written += len(data)
            if self.written > self.limit:
                raise UnparsableFile(
                    "invalid_file",
                    f"{self.filename}: its text exceeds {self.limit >> 20} MiB, the most a "
                    "parsed document may yield (GATEWAY_PARSE_MEMORY_MB).",
                )
            self.out.write(data)

    def close(self) -> None:
        self.out.close()


def _pdf(fd: int, out: _Output) -> None:
    """Page by page, pypdf reading the file as it needs to: neither the document nor its
    text is held whole (the same text as `parse_document`)."""
    with os.fdopen(fd, "rb", closefd=False) as source:
        source.seek(0)
        for number, page in enumerate(pdf_pages(source)):
            out.write(("\n\n" if number else "") + page.replace("\x00", ""))


def _json_lines(fd: int, out: _Output, filename: str) -> None:
    """JSON lines a line at a time (the one text format the child streams): the same text
    `parse_document` gives, without the whole file in memory."""
    check = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        for block in _blocks(fd):
            check.decode(block)
        check.decode(b"", final=True)
        valid = True
    except UnicodeDecodeError:
        valid = False
    encoding = text_encoding(filename, os.pread(fd, SNIFF_BYTES, 0), valid)
    decoder = codecs.getincrementaldecoder(encoding)(
        "replace" if encoding == "cp1252" else "strict"
    )
    lines = JsonLines()
    for block in _blocks(fd):
        out.write(lines.feed(decoder.decode(block)))
    out.write(lines.feed(decoder.decode(b"", final=True), final=True))


def run(job: dict[str, Any]) -> dict[str, Any]:
    filename = str(job["filename"])
    memory = int(job["memory_bytes"])
    limit_self(memory, int(job["cpu_s"]), int(job["output_bytes"]))
    try:
        source = int(job["input_fd"])
        out = _Output(int(job["output_fd"]), int(job["output_bytes"]), filename)
        if is_pdf(filename, os.pread(source, 5, 0)):
            configure_pypdf(memory)
            _pdf(source, out)
        elif is_json_lines(filename):
            _json_lines(source, out, filename)
        else:
            out.write(parse_document(filename, _read(source)))
        out.close()
    except UnparsableFile as exc:
        return {"code": exc.code, "message": exc.message}
    except MemoryError:
        return {
            "code": "invalid_file",
            "message": f"{filename}: parsing it needs more than {memory // (1 << 20)} MiB of "
            "memory (GATEWAY_PARSE_MEMORY_MB).",
        }
    except Exception as exc:  # a parser bug on a hostile file fails that file only
        reason = repr(exc)[:300]
        return {"code": "invalid_file", "message": f"{filename}: could not be parsed ({reason})."}
    return {"ok": True}


def main() -> None:
    # A broken document can make a parser log a warning per object: nobody reads them.
    logging.disable(logging.CRITICAL)
    result = run(json.loads(sys.stdin.buffer.read(64 * 1024)))
    sys.stdout.write(json.dumps(result)[:4096] + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
