"""Every way the README and deploy/README tell a user to run the compose stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.deploy.init import render
from tests.deploy.compose import COMPOSE, PROFILES, ROOT, SCALE_OUT
from tests.deploy.project import Project, load_project


@dataclass(frozen=True)
class Variation:
    id: str
    files: tuple[Path, ...] = (COMPOSE,)
    profiles: tuple[str, ...] = ()
    # Lines the user changes in .env, as the docs describe.
    env: Mapping[str, str] = field(default_factory=dict)

    def load(self, env_file: Path, targets: tuple[str, ...] = ()) -> Project:
        return load_project(
            list(self.files),
            env_file=env_file,
            shell_env={},
            profiles=self.profiles,
            targets=targets,
        )

    @property
    def command(self) -> str:
        files = "".join(f" -f {p.relative_to(ROOT)}" for p in self.files[1:])
        files = f" -f docker-compose.yml{files}" if files else ""
        profiles = "".join(f" --profile {p}" for p in self.profiles)
        return f"docker compose{files}{profiles} up -d"


DEFAULT = Variation("default")
# Every edit .env.example documents, at once: one worker, the host's loopback only on
# another port, and a password of one's own with characters a URL would need escaped.
EDITED = Variation(
    "edited-env",
    env={
        "GATEWAY_WORKERS": "1",
        "GATEWAY_BIND": "127.0.0.1",
        "GATEWAY_PORT": "9080",
        "POSTGRES_PASSWORD": "p@ss/w:rd#1?x",
    },
)
MONITORING = Variation("monitoring", profiles=("monitoring",))
PROFILE_VARIATIONS = [Variation(path.stem, files=(COMPOSE, path)) for path in PROFILES]
SCALE_OUT_MONITORING = Variation(
    "scale-out-monitoring", files=(COMPOSE, SCALE_OUT), profiles=("monitoring",)
)
VARIATIONS = [
    DEFAULT,
    EDITED,
    MONITORING,
    *PROFILE_VARIATIONS,
    Variation("scale-out", files=(COMPOSE, SCALE_OUT)),
    SCALE_OUT_MONITORING,
]


def with_edits(text: str, edits: Mapping[str, str]) -> str:
    lines = text.splitlines()
    for name, value in edits.items():
        lines = [line for line in lines if not line.startswith(f"{name}=")]
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def example_env(folder: Path, variation: Variation) -> Path:
    """.env as `gateway init` writes it from .env.example, then the variation's edits."""
    text, _ = render((ROOT / ".env.example").read_text(), None)
    path = folder / ".env"
    path.write_text(with_edits(text, variation.env))
    return path
