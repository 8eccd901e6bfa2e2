"""The README's engine-group recipes are valid configuration, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.upstream.switching.config import EngineGroup

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def test_every_yaml_recipe_of_the_section_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", section("Several models on one GPU"), re.S)
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        config = tmp_path / f"gateway{i}.yaml"
        config.write_text(block)
        monkeypatch.setenv("GATEWAY_CONFIG", str(config))
        (group,) = Settings().engine_groups
        assert len(group.engines) == 2
    # The documented defaults are the real ones.
    for name, field in EngineGroup.model_fields.items():
        if name in ("name", "engines"):
            continue
        assert f"{name}: {field.default:g}" in blocks[0], name


def test_the_documented_metrics_exist() -> None:
    from gateway.metrics import Metrics

    names = {m.name for m in Metrics().registry.collect()}
    text = section("Several models on one GPU")
    documented = set(re.findall(r"`(gateway_engine_\w+?)(?:_total)?[{`]", text))
    assert len(documented) == 5 and documented <= names
