"""What `gateway ingest` has to do: which local files are new, changed or unchanged.

Pure apart from reading the files it is given. A file is known in a store by the `path`
attribute `gateway ingest` sets, and unchanged when its `sha256` attribute still matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PATH_ATTR = "path"
HASH_ATTR = "sha256"
_MAX_ATTR = 512  # OpenAI's limit on an attribute value


@dataclass(frozen=True, slots=True)
class LocalFile:
    key: str  # how the store knows it: the argument's name plus the path below it
    path: Path


@dataclass(frozen=True, slots=True)
class RemoteFile:
    file_id: str
    sha256: str | None
    status: str
    last_error: str | None = None


@dataclass
class Plan:
    new: list[LocalFile] = field(default_factory=list)
    changed: list[tuple[LocalFile, RemoteFile]] = field(default_factory=list)
    unchanged: list[tuple[LocalFile, RemoteFile]] = field(default_factory=list)


def walk(paths: Iterable[Path], include_hidden: bool = False) -> list[LocalFile]:
    """Every regular file under `paths`, sorted, hidden ones (`.git`, `.env`) skipped
    unless asked for. Keys are relative to each argument's parent, so `docs/` gives
    `docs/a.md` wherever the command runs from."""
    found: dict[str, LocalFile] = {}
    for root in paths:
        root = root.resolve()
        if root.is_file():
            candidates = [root]
            base = root.parent
        else:
            candidates = sorted(p for p in root.rglob("*") if p.is_file())
            base = root.parent
        for path in candidates:
            relative = path.relative_to(base)
            if not include_hidden and any(part.startswith(".") for part in relative.parts):
                continue
            key = relative.as_posix()
            if len(key) > _MAX_ATTR:
                key = key[-_MAX_ATTR:]
            found.setdefault(key, LocalFile(key, path))
    return sorted(found.values(), key=lambda f: f.key)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan(
    local: Iterable[LocalFile], hashes: Mapping[str, str], remote: Mapping[str, RemoteFile]
) -> Plan:
    """Sort local files by what must happen to them; `hashes` maps key → sha256."""
    result = Plan()
    for item in local:
        known = remote.get(item.key)
        if known is None:
            result.new.append(item)
        elif known.sha256 == hashes[item.key] and known.status != "cancelled":
            result.unchanged.append((item, known))
        else:
            result.changed.append((item, known))
    return result
