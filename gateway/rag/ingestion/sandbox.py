"""Parsing untrusted documents in a child process, within time and memory limits.

PDF, HTML and JSON are parsed whole (their formats do not stream; JSON lines do, and are
read a line at a time), by parsers that a hostile file can drive into a decompression
bomb, deep recursion or an endless loop. So each such file is parsed by a fresh
`python -m gateway.rag.ingestion.parse_child`, which limits its own address space and
CPU time (GATEWAY_PARSE_MEMORY_MB, GATEWAY_PARSE_TIMEOUT_S) before reading the document;
this side kills it at the wall-clock timeout. The document reaches the child as an inherited
descriptor of the ingestion's spool file, and the text comes back through another: the
gateway never holds either whole. Any failure ends as `UnparsableFile` for that file
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import gateway
from gateway.rag.ingestion.parsing import UnparsableFile
from gateway.rag.ingestion.spool import Spool

_REPORT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ParseLimits:
    timeout_s: float
    memory_bytes: int

    @property
    def output_bytes(self) -> int:
        """The most text one document may yield: as much as the parser may use."""
        return self.memory_bytes


def _child_env() -> dict[str, str]:
    """No more than the child needs: none of the gateway's settings (its database URL,
    admin key) is within reach of a parser a hostile file might subvert."""
    # The child must import this very gateway (a checkout may shadow an installed one).
    root = str(Path(gateway.__file__).resolve().parent.parent)
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PYTHONPATH": os.pathsep.join(paths), "PATH": os.environ.get("PATH", "")}
    return env


def _died(filename: str, code: int, limits: ParseLimits) -> UnparsableFile:
    if code == -signal.SIGXCPU:
        why = f"took more than {limits.timeout_s:g} s of CPU (GATEWAY_PARSE_TIMEOUT_S)"
    elif code == -signal.SIGXFSZ:
        why = f"yields more than {limits.output_bytes >> 20} MiB of text"
    elif code < 0:
        why = f"crashed the parser ({signal.Signals(-code).name})"
    else:
        why = f"stopped the parser (exit status {code})"
    return UnparsableFile("invalid_file", f"{filename}: could not be parsed: it {why}.")


async def parse_in_child(filename: str, source: Spool, text: Spool, limits: ParseLimits) -> None:
    """Parse the document in `source` into UTF-8 text in `text`; UnparsableFile if it
    cannot be, for whatever reason (its content, a limit, a crash)."""
    job = {
        "filename": filename,
        "input_fd": source.fileno(),
        "output_fd": text.fileno(),
        "memory_bytes": limits.memory_bytes,
        "cpu_s": math.ceil(limits.timeout_s) + 1,
        "output_bytes": limits.output_bytes,
    }
    await source.flush()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.rag.ingestion.parse_child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        pass_fds=(source.fileno(), text.fileno()),
        env=_child_env(),
    )
    try:
        async with asyncio.timeout(limits.timeout_s):
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(job).encode())
            process.stdin.close()
            report = await process.stdout.read(_REPORT_BYTES)
            code = await process.wait()
    except TimeoutError:
        raise UnparsableFile(
            "invalid_file",
            f"{filename}: could not be parsed within {limits.timeout_s:g} s "
            "(GATEWAY_PARSE_TIMEOUT_S).",
        ) from None
    finally:
        if process.returncode is None:  # timed out, or the job was cancelled
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    try:
        result = json.loads(report)
    except ValueError:
        result = None
    if code != 0 or not isinstance(result, dict):
        raise _died(filename, code, limits)
    if not result.get("ok"):
        raise UnparsableFile(str(result.get("code")), str(result.get("message")))
    text.size = os.fstat(text.fileno()).st_size
