"""The README's LoRA recipe is valid configuration, as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from gateway.config import Settings

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_the_yaml_recipe_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    start = README.index("## LoRA adapters\n")
    section = README[start : README.index("\n## ", start + 1)]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(block))
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    (adapter,) = Settings().lora_adapters
    assert (adapter.name, adapter.base_model) == ("sql-helper", "qwen2.5-32b-awq")
