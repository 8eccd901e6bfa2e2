"""`gateway init`: the compose stack's `.env`, written from `.env.example` with fresh secrets.

Runs before anything is installed on the GPU box (docker compose refuses to start, or even
to build, until the secrets exist), so it uses the standard library only and also runs as
`python3 -m gateway.deploy.init` from a checkout.

Rules, so that running it twice is harmless:
- a variable of `.env.example` missing from `.env` is added with the example's value;
- an empty `*_PASSWORD` or `*_KEY` gets a random 64-hex-digit secret (hex: safe in URLs,
  shells and compose's `$` interpolation); `*_TOKEN`s (issued by someone else, like a
  Hugging Face token) are left for the user;
- every other line of an existing `.env` (values, comments, additions) is kept as it is;
- the file is readable by its owner only. Secret values are never printed.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_GENERATED_SUFFIXES = ("_PASSWORD", "_KEY")


def _value(raw: str) -> str:
    """A dotenv value as compose reads it: quotes removed, an unquoted ` # comment` dropped."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def is_generated(name: str) -> bool:
    return name.endswith(_GENERATED_SUFFIXES)


@dataclass
class Report:
    created: bool = False
    generated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def lines(self, env_path: Path, example: Path) -> list[str]:
        out = [f"created {env_path} from {example.name}" if self.created else f"updated {env_path}"]
        if self.generated:
            out.append("generated new secrets: " + ", ".join(self.generated))
        if self.added:
            out.append(f"added from {example.name}: " + ", ".join(self.added))
        if self.kept:
            out.append("kept as they were: " + ", ".join(self.kept))
        if not (self.created or self.generated or self.added):
            out = [f"{env_path} is complete: nothing to do"]
        return out


def render(
    example: str, existing: str | None, token: Callable[[int], str] = secrets.token_hex
) -> tuple[str, Report]:
    """The new `.env` text from the example's and the current `.env`'s (None: no file)."""
    report = Report(created=existing is None)
    if existing is None:
        lines = example.splitlines()
        present: dict[str, str] = {}
    else:
        lines = existing.splitlines()
        present = {m.group(1): _value(m.group(2)) for m in map(_ASSIGNMENT.match, lines) if m}
        report.kept = [name for name, value in present.items() if value]
        missing: list[str] = []
        for line in example.splitlines():
            match = _ASSIGNMENT.match(line)
            if match and match.group(1) not in present:
                missing.append(line)
                report.added.append(match.group(1))
        if missing:
            lines += ["", "# Added by gateway init from .env.example", *missing]
    out: list[str] = []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        if match and is_generated(match.group(1)) and not _value(match.group(2)):
            name = match.group(1)
            line = f"{name}={token(32)}"
            report.generated.append(name)
            if name in report.added:
                report.added.remove(name)
        out.append(line)
    return "\n".join(out) + "\n", report


def write_env(env_path: Path, example_path: Path) -> Report:
    if not example_path.is_file():
        raise FileNotFoundError(
            f"{example_path} not found: run this in the folder that holds docker-compose.yml"
        )
    existing = env_path.read_text(encoding="utf-8") if env_path.exists() else None
    text, report = render(example_path.read_text(encoding="utf-8"), existing)
    if existing != text:
        # Created 0600 from the start: the secrets are never readable by others, even briefly.
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    os.chmod(env_path, 0o600)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gateway init",
        description="Write the compose stack's .env from .env.example, with fresh secrets.",
    )
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument("--example", type=Path, default=Path(".env.example"))
    args = parser.parse_args(argv)
    try:
        report = write_env(args.env_file, args.example)
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for line in report.lines(args.env_file, args.example):
        print(line)
    print("next: docker compose build && docker compose up -d  (see README: docker compose)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
