"""Summarise a py-spy `--format raw` profile (collapsed stacks) as two top lists.

    py-spy record --pid P --format raw -o /tmp/gw.txt --duration 8 --nonblocking
    python -m benchmarks.profile_summary /tmp/gw.txt [--top 25] [--match gateway/]

Inclusive: share of samples with the function anywhere on the stack (where time goes,
callees included). Self: share of samples with it on top (where the CPU actually is).
`--match` keeps only frames whose file contains the text (e.g. the gateway's own code).
`--by-area` groups self time by where the code lives instead (gateway module, uvicorn,
aiohttp, starlette, logging, prometheus_client, asyncio/event loop, ...); with
`--us-per-request` (the process's CPU time per request, which `benchmarks.run` reports)
it prints each area's share in microseconds per request as well.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# py-spy frames look like `function (path/to/file.py:123)`; the line number is dropped so
# that one function is one row.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def summarise(text: str) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";") if f]
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    return total, inclusive, own


def area(frame: str) -> str:
    """Which library (or gateway package) a shortened frame belongs to."""
    path = frame.rsplit("(", 1)[-1].rstrip(")")
    parts = path.split("/")
    if parts[0] == "gateway" and len(parts) > 2:
        return "/".join(parts[:2])
    if parts[0] in ("asyncio", "uvloop") or frame.startswith("Runner.run "):
        return "asyncio + event loop (C, syscalls)"
    if len(parts) > 1 and parts[0] in ("logging", "prometheus_client", "starlette", "uvicorn"):
        return parts[0]
    if parts[0].startswith("aiohttp"):
        return "aiohttp (client)"
    return parts[0] if len(parts) > 1 else path


def by_area(own: Counter[str]) -> Counter[str]:
    grouped: Counter[str] = Counter()
    for frame, n in own.items():
        grouped[area(frame)] += n
    return grouped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", help="only frames whose file contains this text")
    parser.add_argument("--by-area", action="store_true", help="self time grouped by library")
    parser.add_argument("--us-per-request", type=float, help="CPU us per request, to scale")
    args = parser.parse_args(argv)
    total, inclusive, own = summarise(Path(args.path).read_text())
    if not total:
        raise SystemExit("no samples")
    if args.by_area:
        print(f"self time by area (% of {total} samples)")
        for name, n in by_area(own).most_common():
            share = n / total
            scaled = f"  ~{share * args.us_per_request:5.0f} us/req" if args.us_per_request else ""
            print(f"{100 * share:6.1f}{scaled}  {name}")
        return
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title} (% of {total} samples)")
        rows = [(k, v) for k, v in counter.items() if not args.match or args.match in k]
        for frame, n in sorted(rows, key=lambda kv: -kv[1])[: args.top]:
            print(f"{100 * n / total:6.1f}  {frame}")


if __name__ == "__main__":
    main()
