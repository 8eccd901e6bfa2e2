"""Check deploy/vllm-flags.yaml's citations against a vLLM source tree at the pinned tag:
`python -m tests.deploy.vllm_citations /path/to/vllm` (a checkout or an unpacked sdist).

Not a test: CI has no vLLM source at the tag (and no network to fetch one); this is the
step that re-reads every row when the image pin is bumped. Exits 1 on the first mismatch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.deploy.test_vllm_flags import CITATION, table


def _line(source: Path, citation: str) -> str:
    match = CITATION.fullmatch(citation)
    assert match, citation
    lines = (source / match["path"]).read_text(encoding="utf-8").splitlines()
    return lines[int(match["line"]) - 1]


def problems(source: Path) -> list[str]:
    """Each `defined` line must declare the field, each `added` line register the flag."""
    data = table()
    found = []
    positional = data["positional"]
    if f'"{positional["name"]}"' not in _line(source, positional["defined"]):
        found.append(f"positional: {positional['defined']}")
    for flag, row in data["flags"].items():
        added = _line(source, row["added"])
        # Frontend flags are registered in one loop, from their field names.
        if flag not in added and "key.replace('_', '-')" not in added:
            found.append(f"{flag}: {row['added']} reads {added.strip()!r}")
        defined = _line(source, row["defined"])
        declared = re.match(r"\s*(\w+):", defined)
        field = row.get("field", flag.removeprefix("--").replace("-", "_"))
        if not declared or declared[1] != field:
            found.append(f"{flag}: {row['defined']} should declare {field}: {defined.strip()!r}")
    return found


if __name__ == "__main__":
    issues = problems(Path(sys.argv[1]))
    print("\n".join(issues) or "every citation names its flag")
    sys.exit(1 if issues else 0)
