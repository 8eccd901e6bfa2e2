"""The engine-group profile rehearsed (see test_rehearsal.py for how): its engines share one
fake card that refuses, as vLLM does, an engine that starts or wakes without room, so the
start order is tested, not assumed. Both models answer through the gateway, one awake at a
time, and the order without the sleep in between fails the way it would on the GPU."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.deploy.compose import PROFILES, is_group
from tests.deploy.harness import Rehearse, base_url, first_key
from tests.deploy.rehearsal import Rehearsal, RehearsalError
from tests.deploy.variations import PROFILE_VARIATIONS, Variation

# With Prometheus, as the profile's users would watch which model is awake.
GROUP_VARIATIONS = [
    replace(v, profiles=("monitoring",))
    for v, p in zip(PROFILE_VARIATIONS, PROFILES, strict=True)
    if is_group(p)
]


def statuses(stack: Rehearsal, key: str) -> dict[str, str]:
    code, out = stack.host(
        ["curl", "-sf", f"{base_url(stack)}/models", "-H", f"Authorization: Bearer {key}"]
    )
    assert code == 0, out
    return {m["id"]: m.get("status", "") for m in json.loads(out)["data"]}


def chat(stack: Rehearsal, key: str, model: str) -> dict[str, object]:
    argv = ["python", "-m", "tests.deploy.client", base_url(stack), key, model]
    code, out = stack.host(argv)
    assert code == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("variation", GROUP_VARIATIONS, ids=lambda v: v.id)
def test_both_models_answer_one_awake_at_a_time(variation: Variation, rehearse: Rehearse) -> None:
    with rehearse(variation) as stack:
        stack.up()
        first, second = (
            stack.command(name)[stack.command(name).index("--served-model-name") + 1]
            for name in ("vllm", "vllm-b")
        )
        key = first_key(stack)
        # The one-shot put the first engine to sleep; the second then started awake.
        assert "asleep, level 1" in stack.log("vllm-sleep")
        assert statuses(stack, key) == {
            first: "asleep",
            second: "awake",
            "all-minilm-l6-v2": "",
        }
        for model in (first, second, first):
            answer = chat(stack, key, model)
            assert answer["model"] == model and answer["content"], answer
            listed = statuses(stack, key)
            assert listed[model] == "awake"
            assert listed[second if model == first else first] == "asleep"
        # `docker compose up` again: the one-shot runs again and must leave the group alone.
        code, out = stack.run("vllm-sleep")
        assert code == 0 and "not a first start" in out, out
        assert statuses(stack, key)[first] == "awake"
        # Prometheus scrapes both engines of the group, the sleeping one too.
        code, out = stack.exec("prometheus", ["curl", "-s", "http://127.0.0.1:9090/api/v1/targets"])
        engines = {
            t["service"]: t["health"]
            for t in json.loads(out)["data"]["activeTargets"]
            if t["job"] == "vllm"
        }
        assert engines == {"vllm": "up", "vllm-b": "up", "embed": "up"}, engines


@pytest.mark.parametrize("variation", GROUP_VARIATIONS, ids=lambda v: v.id)
def test_without_the_sleep_between_the_second_engine_cannot_start(
    variation: Variation, rehearse: Rehearse
) -> None:
    with rehearse(variation) as stack:
        # The order a naive file would have: the second engine right after the first.
        stack.project.services["vllm-b"]["depends_on"] = {"vllm": {"condition": "service_healthy"}}
        stack.project.services["vllm-sleep"]["depends_on"] = {
            "vllm-b": {"condition": "service_started"}
        }
        with pytest.raises(RehearsalError, match="less than desired GPU memory utilization"):
            stack.up(timeout=60)
