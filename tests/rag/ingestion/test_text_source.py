"""A file's text as ingestion reads it: streamed for plain text, sandboxed for the rest,
and in either case what `parse_document` makes of the whole file."""

from __future__ import annotations

import json
import os
import resource
import zlib
from pathlib import Path

import pytest

from gateway.rag.ingestion.parsing import MAX_SPACE_RUN, TextCleaner, UnparsableFile, parse_document
from gateway.rag.ingestion.sandbox import ParseLimits, parse_in_child
from gateway.rag.ingestion.spool import spool_file
from gateway.rag.ingestion.text_source import document_text
from tests.rag.pdfs import BROKEN_PDF, pages_pdf, text_pdf

LIMITS = ParseLimits(timeout_s=20, memory_bytes=512 << 20)


async def read_text(name: str, data: bytes, limits: ParseLimits = LIMITS) -> str:
    with spool_file(None, "test-") as source:
        for start in range(0, len(data), 1 << 20):
            await source.write(data[start : start + (1 << 20)])
        return "".join([block async for block in document_text(name, source, limits, None)])


MIXED = ("Intro line\n\n" + "A sentence with words, café and naïve. " * 40 + "\n") * 200

SAME_AS_PARSE_DOCUMENT = [
    ("notes.txt", MIXED.encode()),
    ("bom.md", b"\xef\xbb\xbf" + MIXED.encode()),
    ("u16.txt", MIXED.encode("utf-16")),
    ("legacy.txt", MIXED.encode("cp1252")),
    ("noext", MIXED.encode()),  # sniffed as text
    ("page", b"<!DOCTYPE html><p>x &amp; y</p>" + b"<p>more</p>" * 1000),  # sniffed as HTML
    ("page.html", b"<h1>T</h1><script>x</script><p>" + MIXED.encode() + b"</p>"),
    ("data.json", json.dumps({"k": ["v" * 10] * 500}).encode()),
    ("rows.jsonl", b'{"a": 1}\n\n{"b": "two"}\n' * 300),
    ("doc.pdf", text_pdf("Solar panels face south")),
    ("pages.pdf", pages_pdf(["First page", " ", "Third page", "Fourth"] * 50)),
    ("nul.txt", b"a\x00b c\x00" * 100000),
    # A multi-byte character split across the 1 MiB blocks the spool is read in.
    ("edge.txt", b"x" * ((1 << 20) - 1) + "é and more".encode()),
]


@pytest.mark.parametrize(("name", "data"), SAME_AS_PARSE_DOCUMENT, ids=lambda v: str(v)[:12])
async def test_the_text_is_what_parse_document_gives(name: str, data: bytes) -> None:
    assert await read_text(name, data) == parse_document(name, data)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.txt", b"  \n ", "invalid_file"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", "unsupported_file"),
        ("bad.txt", b"\x00\x01" + b"\xff" * 100, "unsupported_file"),
        ("broken.pdf", BROKEN_PDF, "invalid_file"),
        ("bad.json", b"{nope", "invalid_file"),
    ],
)
async def test_failures_are_the_same_too(name: str, data: bytes, code: str) -> None:
    with pytest.raises(UnparsableFile) as expected:
        parse_document(name, data)
    with pytest.raises(UnparsableFile) as streamed:
        text = await read_text(name, data)
        if not text.strip():  # no text: ingestion ends the file with this error
            raise expected.value
    assert streamed.value.code == code == expected.value.code


def test_whitespace_runs_are_cut_however_the_text_is_split() -> None:
    text = "a" + " " * 5000 + "b\n\n" + "\t" * 10 + "c" + "\n" * (MAX_SPACE_RUN + 7)
    expected = "a" + " " * MAX_SPACE_RUN + "b\n\n" + "\t" * 10 + "c" + "\n" * MAX_SPACE_RUN
    for size in (1, 7, 999, len(text)):
        cleaner = TextCleaner()
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(cleaner.clean(p) for p in parts) == expected


# -- the sandbox: hostile documents fail themselves, in a child ---------------------------


def bomb_pdf(megabytes: int) -> bytes:
    """A PDF whose one content stream inflates to `megabytes` MB of text operators."""
    deflate = zlib.compressobj(9)
    block = b"BT /F1 12 Tf 72 720 Td (bomb bomb bomb) Tj ET " * 22000  # ~1 MB
    stream = b"".join(deflate.compress(block) for _ in range(megabytes)) + deflate.flush()
    pdf = text_pdf("x")
    # Swap the small content stream for the bomb (text_pdf's object 4).
    head, rest = pdf.split(b"4 0 obj\n", 1)
    _, tail = rest.split(b"endobj\n", 1)
    body = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
    broken_offsets = head + b"4 0 obj\n" + body + b"\nendstream\nendobj\n" + tail
    return broken_offsets  # pypdf rebuilds the offsets it cannot trust (non-strict)


def own_fds_into(directory: str) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(directory)
    return count


async def test_a_decompression_bomb_fails_in_the_child(tmp_path: Path) -> None:
    bomb = bomb_pdf(200)
    assert len(bomb) < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnparsableFile) as info:
        await read_text("bomb.pdf", bomb)
    assert info.value.code == "invalid_file" and "Limit reached" in info.value.message  # pypdf
    # The 200 MB never came into this process.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


async def test_memory_and_time_limits_end_the_child() -> None:
    huge_list = b"[" + b"1," * 20_000_000 + b"1]"  # ~40 MB of JSON, ~600 MB as objects
    with pytest.raises(UnparsableFile) as memory:
        await read_text("big.json", huge_list, ParseLimits(30, 256 << 20))
    assert "GATEWAY_PARSE_MEMORY_MB" in memory.value.message
    slow = b"<p>x</p>" * 5_000_000  # seconds of HTML parsing
    with pytest.raises(UnparsableFile) as timeout:
        await read_text("slow.html", slow, ParseLimits(0.5, 512 << 20))
    assert "GATEWAY_PARSE_TIMEOUT_S" in timeout.value.message
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(UnparsableFile) as recursion:
        await read_text("deep.json", deep)
    assert recursion.value.code == "invalid_file"


async def test_spool_files_have_no_name_and_close_with_the_job(tmp_path: Path) -> None:
    with spool_file(str(tmp_path), "t-") as spool, spool_file(str(tmp_path), "u-") as text:
        await spool.write(text_pdf("Spooled text"))
        assert list(tmp_path.iterdir()) == []  # nothing to leave behind, even on a crash
        assert own_fds_into(str(tmp_path)) == 2
        await parse_in_child("doc.pdf", spool, text, LIMITS)
        assert b"".join([b async for b in text.blocks()]) == b"Spooled text"
    assert own_fds_into(str(tmp_path)) == 0


async def test_json_lines_stream_through_the_child_a_line_at_a_time() -> None:
    rows = b"".join(b'{"id": %d, "text": "caf\xc3\xa9 row"}\r\n\n' % i for i in range(100_000))
    assert len(rows) > 3_000_000  # parsed whole, 3 x this needs ~180 MiB more
    # More objects than 128 MiB of memory would hold at once, were the file parsed whole.
    limits = ParseLimits(timeout_s=60, memory_bytes=128 << 20)
    text = await read_text("rows.jsonl", rows * 3, limits)
    assert text == parse_document("rows.jsonl", rows * 3)
    with pytest.raises(UnparsableFile) as info:
        await read_text("bad.ndjson", rows + b'{"broken": \n', limits)
    assert info.value.code == "invalid_file" and "invalid JSON" in info.value.message


def test_the_child_gets_none_of_the_gateways_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.rag.ingestion.sandbox import _child_env

    monkeypatch.setenv("GATEWAY_ADMIN_KEY", "secret-admin")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u:pw@h/db")
    env = _child_env()
    assert set(env) == {"PATH", "PYTHONPATH"}
    assert "secret-admin" not in str(env) and "pw@" not in str(env)
