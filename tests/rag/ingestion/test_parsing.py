from __future__ import annotations

import json

import pytest

from gateway.rag.ingestion.parsing import UnparsableFile, parse_document
from tests.rag.pdfs import BROKEN_PDF, text_pdf


def test_plain_text_markdown_and_code_pass_through() -> None:
    assert parse_document("a.txt", b"hello\nworld") == "hello\nworld"
    assert (
        parse_document("README.md", "# Title\n\n*caf\u00e9*".encode()) == "# Title\n\n*caf\u00e9*"
    )
    code = b"def f(x):\n    return x + 1\n"
    assert parse_document("f.py", code) == code.decode()


def test_encodings() -> None:
    assert parse_document("bom.txt", b"\xef\xbb\xbfhi") == "hi"
    assert parse_document("u16.txt", "hi there".encode("utf-16")) == "hi there"
    assert parse_document("legacy.txt", "caf\u00e9".encode("cp1252")) == "caf\u00e9"


def test_html_keeps_text_and_blocks_drops_scripts() -> None:
    html = (
        b"<html><head><title>T</title><style>p{}</style></head><body>"
        b"<h1>Head</h1><p>One &amp; two</p><script>alert(1)</script><ul><li>a</li><li>b</li>"
        b"</ul></body></html>"
    )
    text = parse_document("page.html", html)
    assert "alert" not in text and "p{}" not in text
    assert "One & two" in text
    assert text.splitlines()[0] == "T"
    assert {"a", "b", "Head"} <= set(text.splitlines())


def test_html_is_sniffed_without_an_extension() -> None:
    assert parse_document("page", b"<!DOCTYPE html><p>x</p>") == "x"


def test_json_and_jsonl() -> None:
    text = parse_document("d.json", json.dumps({"name": "router", "ip": "10.0.0.1"}).encode())
    assert '"name": "router"' in text
    assert parse_document("d.jsonl", b'{"a": 1}\n\n{"b": 2}\n') == '{"a": 1}\n{"b": 2}'
    with pytest.raises(UnparsableFile) as info:
        parse_document("bad.json", b"{nope")
    assert info.value.code == "invalid_file"


def test_pdf_text_is_extracted() -> None:
    assert parse_document("doc.pdf", text_pdf("Quarterly report shows growth")) == (
        "Quarterly report shows growth"
    )
    # Sniffed by its magic bytes whatever the name says.
    assert "growth" in parse_document("upload.bin", text_pdf("growth"))


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("broken.pdf", BROKEN_PDF, "invalid_file"),
        ("empty.txt", b"", "invalid_file"),
        ("blank.md", b"  \n\t\n", "invalid_file"),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unsupported_file"),
    ],
)
def test_unparsable_files_say_why(name: str, data: bytes, code: str) -> None:
    with pytest.raises(UnparsableFile) as info:
        parse_document(name, data)
    assert info.value.code == code
    assert info.value.message
