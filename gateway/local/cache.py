"""Build a folder once and keep it: atomic, locked, and redone if a build was interrupted.

A folder appears under its final name only after its builder returned and a marker file was
written, so a half-written conversion (Ctrl-C, OOM, a full disk) is never served. A lock file
makes concurrent callers (two test workers, `gateway up` twice) wait for one build.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

MARKER = ".gateway-complete.json"

Progress = Callable[[str], None]

_log = logging.getLogger(__name__)


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def build_once(
    root: Path,
    name: str,
    build: Callable[[Path], None],
    *,
    describe: Mapping[str, str] | None = None,
    on_progress: Progress | None = None,
) -> Path:
    """Return `root/name`, calling `build(tmp_folder)` first if no complete copy exists."""
    report = on_progress or _log.info
    target = root / name
    if is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{name}.lock"):
        if is_complete(target):  # another process built it while we waited
            return target
        _remove_leftovers(root, name)
        staging = root / f".{name}.tmp-{os.getpid()}"
        staging.mkdir()
        started = time.monotonic()
        try:
            build(staging)
            info = {"built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (staging / MARKER).write_text(json.dumps({**info, **(describe or {})}, indent=1))
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        report(f"{name} ready in {time.monotonic() - started:.0f} s at {target}")
    return target


def _remove_leftovers(root: Path, name: str) -> None:
    # Under the lock nobody else is building `name`: any staging folder is from a dead
    # process, and a target without its marker is one we cannot trust.
    for stale in root.glob(f".{name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    target = root / name
    if target.exists():
        shutil.rmtree(target)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
