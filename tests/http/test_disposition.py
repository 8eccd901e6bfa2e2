"""`Content-Disposition` for downloads named by their uploader: nothing in the name can
add a header, hide an extension or reach the client as bytes it cannot read."""

from __future__ import annotations

import pytest

from gateway.http.disposition import attachment, clean_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            'résumé "final".pdf',
            'attachment; filename="resume _final_.pdf"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf",
        ),
        (
            "evil\r\nSet-Cookie: a=b.txt",
            'attachment; filename="evilSet-Cookie: a=b.txt"; '
            "filename*=UTF-8''evilSet-Cookie%3A%20a%3Db.txt",
        ),
        (
            "日本語.txt",
            "attachment; filename=\"download.txt\"; filename*=UTF-8''"
            "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ("\x00\x1b", "attachment; filename=\"download\"; filename*=UTF-8''download"),
    ],
)
def test_download_names_are_clean_and_rfc_5987(name: str, expected: str) -> None:
    assert attachment(name) == expected


def test_a_right_to_left_override_cannot_disguise_an_extension() -> None:
    assert clean_filename("invoice\u202egpj.exe") == "invoicegpj.exe"
