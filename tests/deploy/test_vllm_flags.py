"""The vLLM commands in the compose files, checked against deploy/vllm-flags.yaml: the flags
that the pinned image's `vllm serve` defines, read from vLLM's source at that tag."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.deploy.compose import COMPOSE, PROFILES, ROOT, SCALE_OUT, load

TABLE_PATH = ROOT / "deploy" / "vllm-flags.yaml"
VLLM_IMAGE = "vllm/vllm-openai:"
KINDS = {"bool", "int", "float", "str", "choice", "list"}
# A whole value that compose fills in from the environment: its kind is unknown here.
INTERPOLATION = re.compile(r"\$\{[^}]*\}")
CITATION = re.compile(r"(?P<path>vllm/[\w/]+\.py):(?P<line>\d+)")


@dataclass(frozen=True)
class Engine:
    """One service that runs the vLLM image, as one compose file states it."""

    file: str
    service: str
    image: str
    entrypoint: list[str]
    command: list[str]

    def where(self, flag: str = "") -> str:
        return f"{self.file}: service {self.service}" + (f": {flag}" if flag else "")


@functools.cache
def table() -> dict[str, Any]:
    data = yaml.safe_load(TABLE_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def engines() -> list[Engine]:
    """Every vLLM service in every compose file. Override files name only what they change,
    so a service without an image or entrypoint takes the base file's."""
    base = load(COMPOSE)["services"]
    found = []
    for path in (COMPOSE, *PROFILES, SCALE_OUT):
        for name, service in load(path)["services"].items():
            inherited = base.get(name, {})
            image = service.get("image", inherited.get("image", ""))
            if not image.startswith(VLLM_IMAGE) or "command" not in service:
                continue
            entrypoint = service.get("entrypoint", inherited.get("entrypoint", []))
            file = path.relative_to(ROOT).as_posix()
            found.append(Engine(file, name, image, entrypoint, service["command"]))
    return found


def is_flag(item: str) -> bool:
    # argparse reads anything that starts with "-" and is not a number as an option.
    if not item.startswith("-"):
        return False
    try:
        float(item)
    except ValueError:
        return True
    return False


def parse_command(command: list[str]) -> tuple[str, list[tuple[str, list[str]]]]:
    """(the positional model, [(flag, its values)]) the way argparse groups them."""
    positional, *rest = command
    pairs: list[tuple[str, list[str]]] = []
    for item in rest:
        if is_flag(item):
            name, eq, value = item.partition("=")
            pairs.append((name, [value] if eq else []))
        elif pairs:
            pairs[-1][1].append(item)
        else:
            raise AssertionError(f"{item!r} follows the model with no flag before it")
    return positional, pairs


def value_error(row: dict[str, Any], values: list[str]) -> str | None:
    """Why `values` do not fit the row's kind, or None if they do."""
    kind = row["kind"]
    if kind == "bool":
        return f"takes no value, got {values}" if values else None
    if kind == "list":
        return None if values else "needs one or more values"
    if len(values) != 1:
        return f"takes exactly one value, got {values}"
    value = values[0]
    if INTERPOLATION.fullmatch(value):
        # Filled in by compose, so only a str can be trusted to fit.
        return None if kind == "str" else f"{value} is a string here, the flag takes {kind}"
    if kind == "int":
        try:
            int(value)
        except ValueError:
            return f"{value!r} is not an int"
    if kind == "float":
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a float"
    if kind == "choice" and value not in row["choices"]:
        return f"{value!r} is not one of {row['choices']}"
    return None


def test_the_table_is_well_formed() -> None:
    data = table()
    assert re.fullmatch(r"v\d+\.\d+\.\d+", data["version"]), data["version"]
    assert data["image"] == VLLM_IMAGE + data["version"]
    assert CITATION.fullmatch(data["positional"]["defined"]), data["positional"]
    for flag, row in data["flags"].items():
        where = f"{TABLE_PATH.name}: {flag}"
        assert re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", flag), where
        assert row["kind"] in KINDS, f"{where}: kind {row['kind']!r}"
        assert ("choices" in row) == (row["kind"] == "choice"), f"{where}: choices"
        assert isinstance(row.get("choices", []), list), f"{where}: choices"
        assert CITATION.fullmatch(row["defined"]), f"{where}: defined"
        assert CITATION.fullmatch(row["added"]), f"{where}: added"


def test_every_compose_file_runs_vllm() -> None:
    # So that the checks below cannot pass by finding nothing.
    files = {engine.file for engine in engines()}
    for path in (COMPOSE, *PROFILES, SCALE_OUT):
        assert path.relative_to(ROOT).as_posix() in files, f"no vLLM command in {path.name}"


@pytest.mark.parametrize("engine", engines(), ids=lambda e: f"{e.file}:{e.service}")
def test_engine_runs_the_pinned_vllm_serve(engine: Engine) -> None:
    data = table()
    assert engine.image == data["image"], (
        f"{engine.where()} runs {engine.image}, but {TABLE_PATH.name} was read at "
        f"{data['version']}: re-check the table at the new tag (see its header)"
    )
    assert engine.entrypoint == ["vllm", "serve"], f"{engine.where()}: {engine.entrypoint}"


@pytest.mark.parametrize("engine", engines(), ids=lambda e: f"{e.file}:{e.service}")
def test_engine_flags_exist_with_the_right_kind(engine: Engine) -> None:
    flags = table()["flags"]
    model, pairs = parse_command(engine.command)
    # The engines run offline: the model is a path in the models volume, not a Hub id.
    assert model.startswith("/"), (
        f"{engine.where()}: the command must start with the model's path, not {model!r}"
    )
    seen: set[str] = set()
    for flag, values in pairs:
        assert flag in flags, (
            f"{engine.where(flag)} is not in {TABLE_PATH.name}: check that vLLM "
            f"{table()['version']} has it (with that spelling), then add a cited row"
        )
        assert flag not in seen, f"{engine.where(flag)} is given twice; the last one wins"
        seen.add(flag)
        problem = value_error(flags[flag], values)
        assert problem is None, f"{engine.where(flag)} {problem}"


def test_every_row_is_used_by_some_compose_file() -> None:
    used = {flag for engine in engines() for flag, _ in parse_command(engine.command)[1]}
    unused = set(table()["flags"]) - used
    assert not unused, f"{TABLE_PATH.name} lists flags no compose file uses: {sorted(unused)}"
