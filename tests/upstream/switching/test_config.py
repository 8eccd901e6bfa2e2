"""Engine groups in the settings: from YAML and env, validated, disjoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import Settings

TWO: dict[str, Any] = {
    "name": "gpu0",
    "engines": [
        {"url": "http://chat:8000/v1", "model": "chat-70b", "sleep_level": 1},
        {"url": "http://coder:8000", "model": "coder-32b", "sleep_level": 2},
    ],
}


def test_groups_from_yaml_with_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams: [http://embed:8000]\n"
        "engine_groups:\n"
        "  - name: gpu0\n"
        "    max_awake: 1\n"
        "    min_residency_s: 5\n"
        "    engines:\n"
        "      - {url: http://chat:8000, model: chat-70b}\n"
        "      - url: http://127.0.0.1:8101\n"
        "        model: small\n"
        "        control: process\n"
        "        command: [python, -m, engine]\n"
        "        env: {VLLM_CPU_KVCACHE_SPACE: '1'}\n"
    )
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    settings = Settings()
    (group,) = settings.engine_groups
    assert group.name == "gpu0" and group.min_residency_s == 5
    assert group.drain_timeout_s == 60 and group.queue_max == 32 and group.idle_sleep_s == 0
    chat, small = group.engines
    assert (chat.control, chat.sleep_level) == ("sleep", 1)
    assert small.control == "process" and small.command == ["python", "-m", "engine"]
    # Grouped engines join the listed upstreams once each.
    assert settings.engine_urls() == [
        "http://embed:8000",
        "http://chat:8000",
        "http://127.0.0.1:8101",
    ]


def test_groups_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENGINE_GROUPS", json.dumps([TWO]))
    monkeypatch.setenv("GATEWAY_UPSTREAMS", "http://chat:8000")
    settings = Settings()
    assert [e.url for e in settings.engine_groups[0].engines] == [
        "http://chat:8000",
        "http://coder:8000",
    ]
    assert settings.engine_urls() == ["http://chat:8000", "http://coder:8000"]


def test_no_groups_by_default() -> None:
    settings = Settings()
    assert settings.engine_groups == []
    assert settings.engine_urls() == settings.upstreams


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{**TWO, "engines": []}], "at least 1"),
        ([{**TWO, "max_awake": 0}], "greater than or equal to 1"),
        ([{**TWO, "queue_max": 0}], "greater than or equal to 1"),
        ([{**TWO, "drain_timeout_s": 0}], "greater than 0"),
        ([{**TWO, "engines": [{"url": "http://a:1", "model": "m", "sleep_level": 3}]}], "1 or 2"),
        (
            [{**TWO, "engines": [{"url": "http://a:1", "model": "m", "control": "process"}]}],
            "needs a `command`",
        ),
        (
            [{**TWO, "engines": [{"url": "http://a:1", "model": "m", "command": ["x"]}]}],
            "only for control",
        ),
        ([{**TWO, "engines": [{"url": "a:1", "model": "m"}]}], "http://"),
        ([{**TWO, "engines": [{"url": "http://a:1", "model": "m", "speed": 9}]}], "Extra inputs"),
        ([{**TWO, "engines": [TWO["engines"][0], TWO["engines"][0]]}], "listed twice"),
        (
            [{**TWO, "engines": [TWO["engines"][0], {**TWO["engines"][1], "model": "chat-70b"}]}],
            "served by two engines",
        ),
        ([TWO, {**TWO, "name": "gpu1"}], "in two engine groups"),
        ([TWO, {**TWO, "engines": [{"url": "http://x:1", "model": "x"}]}], "used twice"),
    ],
)
def test_bad_groups_are_refused_clearly(groups: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(engine_groups=groups)
