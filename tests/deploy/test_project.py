"""How our files combine as `docker compose` combines them: merge, profiles, `.env`, and the
checks compose makes before it starts anything (it refuses these at once: no restart loop)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.deploy.compose import COMPOSE, PROFILES, ROOT, SCALE_OUT
from tests.deploy.interpolation import InterpolationError, required_variables
from tests.deploy.project import ComposeError, Port, load_project, parse_port
from tests.deploy.variations import VARIATIONS, Variation, example_env


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_merge_rules(tmp_path: Path) -> None:
    base = _write(
        tmp_path,
        "base.yml",
        """
        services:
          app:
            image: app:1
            command: ["serve", "--a"]
            environment: {A: "1", B: "2"}
            ports: ["0.0.0.0:8080:8080"]
            expose: ["80"]
            volumes: ["data:/data", "./conf:/etc/conf:ro"]
            healthcheck: {test: ["CMD", "old"], interval: 5s}
            depends_on: [db]
          db: {image: db:1}
        """,
    )
    override = _write(
        tmp_path,
        "override.yml",
        """
        services:
          app:
            command: ["serve", "--b"]
            environment: ["B=two", "C=3"]
            expose: ["81"]
            volumes: ["./other:/etc/conf:ro"]
            healthcheck: {test: ["CMD", "new"]}
            depends_on: {cache: {condition: service_healthy}}
          cache: {image: cache:1}
        """,
    )
    app = load_project([base, override], shell_env={}).services["app"]
    assert app["command"] == ["serve", "--b"]  # replaced, not appended
    assert app["environment"] == {"A": "1", "B": "two", "C": "3"}
    assert app["expose"] == ["80", "81"]  # sequences append
    assert app["volumes"] == ["data:/data", "./other:/etc/conf:ro"]  # unique by target
    assert app["healthcheck"] == {"test": ["CMD", "new"], "interval": "5s"}
    assert app["depends_on"] == {
        "db": {"condition": "service_started"},
        "cache": {"condition": "service_healthy"},
    }


def test_reset_and_override_tags(tmp_path: Path) -> None:
    base = _write(
        tmp_path,
        "a.yml",
        'services: {app: {image: x, ports: ["8080:8080"], environment: {A: "1"}}}',
    )
    over = _write(
        tmp_path, "b.yml", "services: {app: {ports: !reset [], environment: !override {B: '2'}}}"
    )
    app = load_project([base, over], shell_env={}).services["app"]
    assert app["ports"] == []
    assert app["environment"] == {"B": "2"}


def test_profiles_and_dependencies(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "c.yml",
        """
        services:
          app: {image: a, depends_on: {tool: {condition: service_started, required: false}}}
          tool: {image: t, profiles: [tools]}
          needy: {image: n, profiles: [extra], depends_on: [tool]}
        """,
    )
    assert set(load_project([path], shell_env={}).services) == {"app"}
    assert set(load_project([path], shell_env={}, targets=["tool"]).services) == {"app", "tool"}
    with pytest.raises(ComposeError, match="no enabled profile"):
        load_project([path], shell_env={}, profiles=["extra"])
    both = load_project([path], shell_env={"COMPOSE_PROFILES": "extra,tools"})
    assert both.order().index("tool") < both.order().index("needy")


def test_cycles_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.yml", "services: {a: {depends_on: [b]}, b: {depends_on: [a]}}")
    with pytest.raises(ComposeError, match="cycle: a -> b -> a"):
        load_project([path], shell_env={})


def test_the_shell_wins_over_the_env_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "e.yml", "services: {a: {image: 'img:${TAG:-1}', environment: {X: $X}}}"
    )
    _write(tmp_path, ".env", "TAG=from-file\nX=file\n")
    project = load_project([path], shell_env={"X": "shell"})
    assert project.services["a"]["image"] == "img:from-file"
    assert project.services["a"]["environment"] == {"X": "shell"}


def test_port_short_syntax() -> None:
    assert parse_port("0.0.0.0:8080:8080") == Port("0.0.0.0", 8080, 8080)
    assert parse_port("127.0.0.1:3000:3000") == Port("127.0.0.1", 3000, 3000)
    assert parse_port("8000:80") == Port("0.0.0.0", 8000, 80)
    assert parse_port("9090") == Port("0.0.0.0", None, 9090)


# -- our files ---------------------------------------------------------------------------


@pytest.mark.parametrize("variation", VARIATIONS, ids=lambda v: v.id)
def test_variation_is_a_valid_project(variation: Variation, tmp_path: Path) -> None:
    """What compose checks before it starts: every dependency exists in the enabled
    profiles, no cycle, and no variable is read unset without a default (compose would warn
    and put an empty string in its place)."""
    project = variation.load(example_env(tmp_path, variation))
    assert project.order()
    assert project.unset == set(), f"read while unset: {sorted(project.unset)}"


def _example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z0-9_]+)=", text, re.MULTILINE))


def test_every_required_variable_is_documented_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    for path in (COMPOSE, SCALE_OUT, *PROFILES):
        for name, message in required_variables(path.read_text()).items():
            assert name in _example_names(), f"{path.name}: {name} is not in .env.example"
            assert message, f"{path.name}: ${{{name}:?}} needs a message saying what to do"
            assert re.search(rf"^{name}=$", example, re.MULTILINE), f"{name} has a value"


def test_a_missing_secret_stops_compose_at_once(tmp_path: Path) -> None:
    """The user who copies .env.example without filling it in is told what to run."""
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    secret = "(POSTGRES_PASSWORD|GATEWAY_ADMIN_KEY|VLLM_API_KEY)"
    with pytest.raises(InterpolationError, match=f"{secret} is missing a value: .*gateway init"):
        load_project([COMPOSE], env_file=env, shell_env={})
