"""`Dockerfile.api` built without Docker: its instructions, interpreted one by one.

The build context is what `.dockerignore` lets through; the build stage's RUN lines run for
real (a fresh venv at /opt/venv, `pip install .` from the copied sources) except the
system-package ones (`apt-get`, which only installs compilers here); the final stage's
files, ENV, USER, WORKDIR, HEALTHCHECK and CMD become what a container of the image gets
(`Image`). A RUN line this module does not understand fails the build, so a change to the
Dockerfile cannot slip past the rehearsal unread.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.compose import ROOT
from tests.deploy.sandbox import Mounts

DOCKERFILE = ROOT / "Dockerfile.api"
# What python:3.11-slim-bookworm sets (docker inspect): the base of both stages.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARGs, stages), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def dockerignore_rules() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _matches(path: str, pattern: str) -> bool:
    """A .dockerignore pattern against a context-relative path: from the context root,
    through a parent folder (excluding a folder excludes its content), and at any depth
    after a leading "**/"."""
    parts = path.split("/")
    if pattern.startswith("**/"):
        return any(_matches("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1))


def ignored(path: str, rules: list[str]) -> bool:
    """The last matching rule wins, as in Docker."""
    result = False
    for rule in rules:
        if _matches(path, rule.lstrip("!").rstrip("/")):
            result = not rule.startswith("!")
    return result


def build_context(into: Path) -> Path:
    """The files `docker build .` sends: the checkout minus what .dockerignore excludes."""
    rules = dockerignore_rules()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT)
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if not ignored(rel, rules):
                target = into / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(dirpath) / name, target)
    return into


@dataclass
class Image:
    """What a container of the final stage sees."""

    root: Path  # the image's files: <root>/opt/... is the image's /opt
    env: dict[str, str]
    user: tuple[int, int]
    home: str
    workdir: str
    healthcheck: list[str]
    cmd: list[str]
    skipped: list[str]  # RUN lines not run here (system packages), for the record

    def mounts(self, volumes: dict[str, Path] | None = None) -> Mounts:
        """The image's top-level folders bound in place; `volumes` (image path -> folder on
        this machine) over them, as compose mounts named volumes."""
        binds = {f"/{d.name}": d for d in sorted(self.root.iterdir()) if d.is_dir()}
        binds.update(volumes or {})
        return Mounts(binds=tuple((str(src), target) for target, src in binds.items()))

    def container_env(self, service_env: dict[str, str], user: str | None = None) -> dict[str, str]:
        """The image's ENV under the service's `environment`, as Docker merges them."""
        home = "/root" if user == "root" else self.home
        return {**self.env, "HOME": home, **service_env}


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def _env_pairs(rest: str, env: dict[str, str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for token in shlex.split(rest):
        key, _, value = token.partition("=")
        pairs[key] = _expand(value, {**env, **pairs})
    return pairs


@dataclass
class _StageState:
    root: Path
    env: dict[str, str] = field(default_factory=lambda: dict(BASE_ENV))
    cwd: str = "/"
    users: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    user: tuple[int, int, str] = (0, 0, "/root")
    health: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def path(self, image_path: str) -> Path:
        absolute = image_path if image_path.startswith("/") else f"{self.cwd}/{image_path}"
        return self.root / os.path.normpath(absolute).lstrip("/")


def build_image(workdir: Path) -> Image:
    """Build Dockerfile.api's stages into `workdir`; the final stage's image."""
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    context = build_context(workdir / "context")
    roots: dict[str, Path] = {}
    skipped: list[str] = []
    state: _StageState | None = None
    for index, stage in enumerate(stages):
        state = _StageState(workdir / f"stage{index}")
        (state.root / "opt").mkdir(parents=True)
        for keyword, rest in stage.instructions:
            if keyword == "ENV":
                state.env.update(_env_pairs(rest, state.env))
            elif keyword == "WORKDIR":
                state.cwd = rest
                state.path(rest).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                _copy(rest.split(), context, roots, state)
            elif keyword == "RUN":
                _run(rest, state, skipped)
            elif keyword == "USER":
                name = rest.split(":")[0]
                state.user = state.users.get(name) or (int(name), int(name), "/")
            elif keyword == "HEALTHCHECK":
                state.health = json.loads(rest.partition("CMD")[2].strip())
            elif keyword == "CMD":
                state.cmd = json.loads(rest)
            elif keyword not in ("EXPOSE", "ARG", "LABEL"):
                raise NotImplementedError(f"Dockerfile.api: {keyword} is not interpreted here")
        roots[stage.name or str(index)] = state.root
    assert state is not None
    return Image(
        state.root,
        state.env,
        state.user[:2],
        state.user[2],
        state.cwd,
        state.health,
        state.cmd,
        skipped,
    )


def _copy(parts: list[str], context: Path, roots: dict[str, Path], state: _StageState) -> None:
    """COPY as Docker does: a folder's content into the destination; several sources or a
    trailing slash make the destination a folder."""
    source_root = context
    if parts[0].startswith("--from="):
        source_root = roots[parts[0].split("=", 1)[1]]
        parts = parts[1:]
    *sources, dest = parts
    target = state.path(dest)
    into_folder = dest.endswith("/") or len(sources) > 1
    for source in sources:
        origin = source_root / source.lstrip("/")
        if not origin.exists():
            raise FileNotFoundError(
                f"COPY {source}: not in the build context (excluded by .dockerignore?)"
            )
        if origin.is_dir():
            # Hard links: the venv is large, and neither copy is changed afterwards.
            shutil.copytree(origin, target, dirs_exist_ok=True, copy_function=os.link)
        else:
            final = target / origin.name if into_folder else target
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, final)


_USERADD = re.compile(r"useradd .*--uid (\d+) --gid (\S+) .*--home-dir (\S+) .*?(\S+)$")
_GROUPADD = re.compile(r"groupadd .*--gid (\d+) (\S+)")
_MKDIR_CHOWN = re.compile(r"^mkdir -p (\S+)$|^chown (\S+):(\S+) (\S+)$")


def _run(command: str, state: _StageState, skipped: list[str]) -> None:
    """A RUN line: system packages and users are recorded, Python steps run for real."""
    groups: dict[str, int] = {}
    for step in (s.strip() for s in command.split("&&")):
        if step.startswith(("apt-get", "rm -rf /var/lib/apt")):
            skipped.append(step)
        elif match := _GROUPADD.search(step):
            groups[match.group(2)] = int(match.group(1))
        elif match := _USERADD.search(step):
            uid, group, home, name = match.groups()
            state.users[name] = (int(uid), groups.get(group, int(uid)), home)
        elif match := _MKDIR_CHOWN.match(step):
            if match.group(1):
                state.path(match.group(1)).mkdir(parents=True, exist_ok=True)
            else:
                owner = state.users.get(match.group(2))
                if owner is None:
                    raise ValueError(f"RUN {step}: unknown user")
                os.chown(state.path(match.group(4)), owner[0], owner[1])
        elif step.startswith(("python -m venv", "pip install")):
            _shell(step, state)
        else:
            raise NotImplementedError(f"Dockerfile.api: RUN {step!r} is not interpreted here")


def _shell(step: str, state: _StageState) -> None:
    """Run in a private mount namespace where the stage's /opt is the image's /opt, so the
    venv is built at its real path (/opt/venv: its scripts name it)."""
    env = {**state.env, "HOME": "/root"}
    # The base image's python is this machine's (the same minor version).
    step = re.sub(r"^python ", f"{sys.executable} ", step)
    script = f"mount --bind {shlex.quote(str(state.root / 'opt'))} /opt\n{step}"
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-ec", script],
        cwd=state.path(state.cwd),
        env=env,
        check=True,
        capture_output=True,
    )
