"""`Content-Disposition` for a download whose name a client chose at upload. Pure.

The name is the uploader's: control and format characters (a newline, an escape sequence,
a right-to-left override that turns `gpj.exe` into `exe.jpg`) are dropped, and it goes
out twice, as RFC 6266 asks: `filename*=UTF-8''...` (RFC 5987, percent-encoded) for every
client that reads it, and a plain ASCII `filename="..."` for the few that do not.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

_FALLBACK = "download"


def clean_filename(name: str) -> str:
    """`name` without control, format or other unprintable characters."""
    kept = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    return kept.strip() or _FALLBACK


def attachment(name: str) -> str:
    clean = clean_filename(name)
    # The ASCII fallback: accents folded where they fold, anything else, quotes and
    # backslashes (which would end or escape the quoted string) replaced.
    folded = unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode("ascii")
    ascii_name = "".join("_" if c in '"\\' else c for c in folded).strip()
    if not ascii_name or ascii_name.startswith("."):  # `日本語.txt` -> `download.txt`
        ascii_name = _FALLBACK + ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"
