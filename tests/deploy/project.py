"""A Compose project as `docker compose` would build it from our files: the `.env` file and
the shell environment, interpolation per file, the merge of `-f` files, and profiles.

What this reads is exactly what a user runs (`docker compose -f docker-compose.yml -f
deploy/... --profile ... up`); the rehearsal (`rehearsal.py`) then runs the result. Rules
from the Compose Specification: interpolation (see `interpolation.py`), merge
(https://docs.docker.com/reference/compose-file/merge/: mappings merge, sequences append,
`command`/`entrypoint`/`healthcheck.test` are replaced, `ports` and `volumes` are unique by
their key, `!reset` and `!override`), and profiles (a service with `profiles` runs only
when one of them is enabled or it is targeted by name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from tests.deploy.interpolation import Interpolator

_REPLACED = ("command", "entrypoint")
_MAPPING_LISTS = ("environment", "labels")


@dataclass
class Tagged:
    """A value under `!reset` or `!override`."""

    tag: str
    value: Any


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped (no stubs installed)
    pass


def _tagged(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
        if isinstance(node, yaml.SequenceNode):
            return Tagged(tag, loader.construct_sequence(node, deep=True))
        if isinstance(node, yaml.MappingNode):
            return Tagged(tag, loader.construct_mapping(node, deep=True))
        return Tagged(tag, loader.construct_scalar(node))

    return construct


_Loader.add_constructor("!reset", _tagged("!reset"))
_Loader.add_constructor("!override", _tagged("!override"))


def read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return data


class ComposeError(ValueError):
    """What `docker compose` refuses before starting anything."""


@dataclass
class Project:
    name: str
    files: list[Path]
    env: dict[str, str]  # what `${...}` read: the shell over the `.env` file
    services: dict[str, dict[str, Any]]  # the active ones (profiles applied)
    defined: dict[str, dict[str, Any]]  # every service, merged
    volumes: dict[str, Any]
    targeted: set[str] = field(default_factory=set)  # active only because named on the CLI
    used: set[str] = field(default_factory=set)
    unset: set[str] = field(default_factory=set)

    def order(self) -> list[str]:
        """Active services in an order that starts each after what it depends on."""
        done: list[str] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                cycle = " -> ".join([*visiting[visiting.index(name) :], name])
                raise ComposeError(f"dependency cycle: {cycle}")
            visiting.append(name)
            for dep in self.depends_on(name):
                visit(dep)
            visiting.pop()
            done.append(name)

        for name in self.services:
            visit(name)
        return done

    def depends_on(self, name: str) -> dict[str, dict[str, Any]]:
        """The active services `name` waits for, with their condition; an inactive
        dependency is refused unless it says `required: false`."""
        found: dict[str, dict[str, Any]] = {}
        for dep, spec in _depends(self.services[name].get("depends_on")).items():
            if dep in self.services:
                found[dep] = spec
            elif dep not in self.defined:
                raise ComposeError(f"service {name!r} depends on undefined service {dep!r}")
            elif spec.get("required", True):
                raise ComposeError(
                    f"service {name!r} depends on {dep!r}, which no enabled profile starts"
                )
        return found


def load_project(
    files: Sequence[Path],
    *,
    shell_env: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    profiles: Iterable[str] = (),
    targets: Iterable[str] = (),
) -> Project:
    """What `docker compose -f F1 -f F2 --profile P ... [run|up] TARGETS` builds.

    `env_file` defaults to `.env` beside the first file (Compose's project directory).
    """
    env_path = env_file if env_file is not None else files[0].parent / ".env"
    env = {k: v or "" for k, v in dotenv_values(env_path).items()} if env_path.exists() else {}
    env.update(shell_env or {})
    interpolator = Interpolator(env)
    merged: dict[str, Any] = {}
    for path in files:
        merged = _merge(merged, _interpolate(read_yaml(path), interpolator))
    enabled = set(profiles) | {p for p in env.get("COMPOSE_PROFILES", "").split(",") if p}
    wanted = set(targets)
    merged = _untag(merged)
    defined = {name: _normalise(spec or {}) for name, spec in merged["services"].items()}
    enabled_here = {
        name
        for name, spec in defined.items()
        if not spec.get("profiles") or set(spec["profiles"]) & enabled
    }
    active = {name: spec for name, spec in defined.items() if name in enabled_here | wanted}
    project = Project(
        name=str(merged.get("name") or files[0].parent.name),
        files=list(files),
        env=env,
        services=active,
        defined=defined,
        volumes=dict(merged.get("volumes") or {}),
        targeted=set(active) - enabled_here,
        used=interpolator.used,
        unset=interpolator.unset,
    )
    project.order()  # refuses cycles and missing dependencies, as compose does
    return project


def _interpolate(node: Any, interpolator: Interpolator) -> Any:
    if isinstance(node, Tagged):
        return Tagged(node.tag, _interpolate(node.value, interpolator))
    if isinstance(node, dict):
        return {key: _interpolate(value, interpolator) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(item, interpolator) for item in node]
    return interpolator.value(node)


def _depends(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {name: {"condition": "service_started"} for name in value}
    return {name: dict(spec or {}) for name, spec in value.items()}


def _env_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {key: (val if sep else None) for key, sep, val in pairs}
    return dict(value or {})


def _normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """A service's list-or-mapping fields in their mapping form (merge tags kept)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        inner = value.value if isinstance(value, Tagged) else value
        if key in _MAPPING_LISTS:
            inner = _env_mapping(inner)
        elif key == "depends_on":
            inner = _depends(inner)
        out[key] = Tagged(value.tag, inner) if isinstance(value, Tagged) else inner
    return out


def _untag(node: Any) -> Any:
    """What is left of the merge tags once every file is merged."""
    if isinstance(node, Tagged):
        return type(node.value)() if node.tag == "!reset" else _untag(node.value)
    if isinstance(node, dict):
        return {key: _untag(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_untag(item) for item in node]
    return node


def _merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(override, Tagged):
        if override.tag == "!reset":
            return type(override.value)()
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        if len(path) == 2 and path[0] == "services":
            base, override = _normalise(base), _normalise(override)
        out = dict(base)
        for key, value in override.items():
            if key in out and not _replaced(path, key):
                out[key] = _merge(out[key], value, (*path, key))
            else:
                out[key] = _merge(None, value, (*path, key)) if isinstance(value, Tagged) else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        unique = _UNIQUE.get(path[-1]) if path else None
        if unique is None:
            return [*base, *override]
        keyed = {unique(item): item for item in base}
        keyed.update({unique(item): item for item in override})
        return list(keyed.values())
    return override


def _replaced(path: tuple[str, ...], key: str) -> bool:
    in_service = len(path) == 2 and path[0] == "services"
    return (in_service and key in _REPLACED) or (path[-1:] == ("healthcheck",) and key == "test")


def volume_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry["target"])
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: int | None
    target: int


_PORT = re.compile(r"^(?:(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:(\d+):)?(\d+)(?:/(tcp|udp))?$")


def parse_port(entry: Any) -> Port:
    """The short syntax `[IP:][PUBLISHED:]TARGET[/PROTO]`."""
    match = _PORT.match(str(entry))
    if match is None:
        raise ComposeError(f"invalid port mapping {entry!r}")
    ip, published, target, _ = match.groups()
    return Port(ip or "0.0.0.0", int(published) if published else None, int(target))


_UNIQUE: dict[str, Callable[[Any], Hashable]] = {"volumes": volume_target, "ports": parse_port}
