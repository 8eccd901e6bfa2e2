"""Turning an uploaded file into text: plain text, Markdown, source code, HTML, JSON, PDF.

Pure (bytes in, text out). Plain text streams (`classify`, `text_encoding`,
`TextCleaner`: the worker decodes it block by block); the other formats are parsed by the
sandboxed child process (gateway.rag.ingestion.sandbox): JSON lines a line at a time
(`JsonLines`), the rest whole, by `parse_document`.
Failures raise `UnparsableFile` with the code OpenAI puts in a vector store file's
`last_error`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from enum import Enum
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import IO

# Decoded as text whatever the extension says; anything else is sniffed.
_TEXT_WORDS = """
txt md markdown rst adoc org tex csv tsv log ini cfg conf toml yaml yml xml py pyi js mjs
cjs ts tsx jsx go rs java kt kts scala c h cc cpp hpp cs rb php swift m mm sh bash zsh ps1
sql r jl lua pl ex exs erl hs ml clj dart vue svelte css scss less proto graphql dockerfile
gradle properties env gitignore
"""
_BLOCK_WORDS = """
p div br li ul ol tr table section article header footer h1 h2 h3 h4 h5 h6 pre blockquote
hr dd dt title
"""
TEXT_EXTENSIONS = frozenset("." + word for word in _TEXT_WORDS.split())
_HTML = frozenset({".html", ".htm", ".xhtml"})
_JSON = frozenset({".json", ".jsonl", ".ndjson", ".ipynb"})
_BLOCK_TAGS = frozenset(_BLOCK_WORDS.split())
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t\r\f\v]+")
# Longer runs of whitespace are cut to this: they carry no meaning, and a file of nothing
# else would otherwise be held whole while chunking looks for the end of the "word".
MAX_SPACE_RUN = 1000
# A whitespace run longer than allowed, and what of it is kept.
_LONG_SPACE_RUN = re.compile(rf"(\s{{{MAX_SPACE_RUN}}})\s+")
SNIFF_BYTES = 8192


class UnparsableFile(Exception):
    """`code` is `unsupported_file` (a kind we can't read) or `invalid_file` (broken/empty)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Kind(Enum):
    TEXT = "text"  # decoded as it streams
    DOCUMENT = "document"  # PDF, HTML, JSON: parsed whole, in the sandbox


def _suffix(filename: str) -> str:
    return PurePosixPath(filename.lower()).suffix


def classify(filename: str, head: bytes) -> Kind:
    """How to read a file, from its name and first SNIFF_BYTES; UnparsableFile if at all."""
    suffix = _suffix(filename)
    if suffix == ".pdf" or head[:5] == b"%PDF-" or suffix in _HTML or suffix in _JSON:
        return Kind.DOCUMENT
    if suffix in TEXT_EXTENSIONS or _looks_textual(head):
        return Kind.TEXT
    raise _unsupported(filename)


def text_encoding(filename: str, head: bytes, valid_utf8: bool) -> str:
    """The codec `parse_document` would decode a text file with (`valid_utf8`: the whole
    file decodes as UTF-8, which only a pass over it can tell)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if valid_utf8:
        return "utf-8-sig"
    if b"\x00" in head[:SNIFF_BYTES]:
        raise UnparsableFile("unsupported_file", f"{filename}: binary content, not text.")
    return "cp1252"


def is_html_text(filename: str, first_chars: str) -> bool:
    """A text file that is HTML after all (read whole, as HTML, in the sandbox)."""
    return _suffix(filename) not in TEXT_EXTENSIONS and _looks_like_html(first_chars)


class TextCleaner:
    """What `parse_document` and chunking would make of text, block by block: NULs
    dropped, whitespace runs cut to MAX_SPACE_RUN characters."""

    def __init__(self) -> None:
        self._run = 0  # length of the whitespace run the previous block ended in

    def clean(self, block: str) -> str:
        # Regular expressions over the whole block, not a Python step per whitespace run:
        # this ran for every character ingestion reads.
        block = block.replace("\x00", "")
        lead = len(block) - len(block.lstrip())  # continues the previous block's run
        allowed = max(0, min(lead, MAX_SPACE_RUN - self._run))
        if lead == len(block):
            self._run += lead
            return block[:allowed]
        self._run = len(block) - len(block.rstrip())
        return block[:allowed] + _LONG_SPACE_RUN.sub(r"\1", block[lead:])


class JsonLines:
    """What `parse_document` makes of JSON lines, from decoded text a block at a time: each
    non-blank line (as `str.splitlines` cuts them) validated and re-serialised, the values
    joined by newlines. Holds one line at most."""

    def __init__(self) -> None:
        self._carry = ""
        self._first = True

    def feed(self, text: str, final: bool = False) -> str:
        lines = (self._carry + text).splitlines(keepends=True)
        self._carry = ""
        if lines and not final:
            last = lines[-1]
            # Unfinished, or a "\r" that a "\n" in the next block may complete.
            if last.endswith("\r") or last.splitlines() == [last]:
                self._carry = lines.pop()
        out: list[str] = []
        for line in lines:
            content = line.splitlines()[0] if line.strip() else ""
            if not content.strip():
                continue
            try:
                value = json.loads(content)
            except json.JSONDecodeError as exc:
                raise UnparsableFile("invalid_file", f"invalid JSON: {exc}") from exc
            out.append(("" if self._first else "\n") + json.dumps(value, ensure_ascii=False))
            self._first = False
        return "".join(out)


def is_json_lines(filename: str) -> bool:
    return _suffix(filename) in {".jsonl", ".ndjson"}


def _unsupported(filename: str) -> UnparsableFile:
    return UnparsableFile(
        "unsupported_file",
        f"{filename}: unsupported file type; supported are text, Markdown, source code, "
        "HTML, JSON and PDF.",
    )


def no_text(filename: str) -> UnparsableFile:
    return UnparsableFile("invalid_file", f"{filename}: the file contains no text.")


def parse_document(filename: str, data: bytes) -> str:
    suffix = _suffix(filename)
    if is_pdf(filename, data):
        text = _pdf(data)
    elif suffix in _HTML:
        text = _html(_decode(data, filename))
    elif suffix in _JSON:
        text = _json(_decode(data, filename), suffix)
    elif suffix in TEXT_EXTENSIONS or _looks_textual(data):
        text = _decode(data, filename)
        if suffix not in TEXT_EXTENSIONS and _looks_like_html(text):
            text = _html(text)
    else:
        raise _unsupported(filename)
    text = text.replace("\x00", "")
    if not text.strip():
        raise no_text(filename)
    return text


def _looks_textual(data: bytes) -> bool:
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still text.
        return exc.start >= len(sample) - 3
    return True


def _decode(data: bytes, filename: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:SNIFF_BYTES]:
        raise UnparsableFile("unsupported_file", f"{filename}: binary content, not text.")
    return data.decode("cp1252", errors="replace")


def _looks_like_html(text: str) -> bool:
    head = text[:1024].lstrip().lower()
    return head.startswith(("<!doctype html", "<html"))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _json(raw: str, suffix: str) -> str:
    """Validated, then re-indented so that each value sits on a line with its key."""
    try:
        if suffix in {".jsonl", ".ndjson"}:
            values = [json.loads(line) for line in raw.splitlines() if line.strip()]
            return "\n".join(json.dumps(v, ensure_ascii=False) for v in values)
        return json.dumps(json.loads(raw), ensure_ascii=False, indent=1)
    except json.JSONDecodeError as exc:
        raise UnparsableFile("invalid_file", f"invalid JSON: {exc}") from exc


def is_pdf(filename: str, head: bytes) -> bool:
    return _suffix(filename) == ".pdf" or head[:5] == b"%PDF-"


def pdf_pages(source: IO[bytes]) -> Iterator[str]:
    """A PDF's text a page at a time (stripped, blank pages left out), read from `source`
    as pypdf needs it rather than whole."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(source, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnparsableFile("invalid_file", "the PDF is encrypted.")
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            if text:
                yield text
    except UnparsableFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise UnparsableFile("invalid_file", f"could not read the PDF: {exc}") from exc


def _pdf(data: bytes) -> str:
    return "\n\n".join(pdf_pages(io.BytesIO(data)))
