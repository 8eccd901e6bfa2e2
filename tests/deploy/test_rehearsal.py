"""The compose stack rehearsed: each documented way to run it comes up healthy and serves.

`docker compose up` cannot run here (no Docker engine, no GPU), so `rehearsal.py` runs
what compose would: the services built from Dockerfile.api with their exact commands and
environment, as the image's user, against real stand-ins under the services' names. The
default case is the regression test for the stack that never started (two workers
without Redis: the gateway container exited at once and restarted forever).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.deploy.harness import Rehearse, base_url, chat_model, first_key, sdk_chat
from tests.deploy.rehearsal import Rehearsal
from tests.deploy.variations import (
    DEFAULT,
    EDITED,
    MONITORING,
    PROFILE_VARIATIONS,
    SCALE_OUT_MONITORING,
    Variation,
)


def test_default_stack_comes_up_and_serves(rehearse: Rehearse) -> None:
    with rehearse(DEFAULT) as stack:
        stack.up()  # every service healthy, `migrate` exited 0, or this raises with its log
        assert stack.healthy("gateway")  # the image's own HEALTHCHECK, run in the container
        key = first_key(stack, rpm="60")
        answer = sdk_chat(stack, key)
        assert answer["content"] and answer["streamed"]
        assert answer["model"] == chat_model(stack)
        assert answer["ratelimit_limit"] == "60"  # the key's limits apply, through Redis

        # The admin key from .env works from the host.
        admin = stack.project.env["GATEWAY_ADMIN_KEY"]
        code, out = stack.host(
            [
                "curl",
                "-sf",
                f"{base_url(stack)[:-3]}/admin/keys",
                "-H",
                f"Authorization: Bearer {admin}",
            ]
        )
        assert code == 0 and '"name":"alice"' in out.replace(" ", ""), out

        # The README's backup command, and the upgrade path: `migrate` again, a no-op.
        dump = "pg_dump -U gateway -Fc gateway | pg_restore --list"
        code, contents = stack.exec("postgres", ["sh", "-c", dump])
        assert code == 0 and "TABLE public api_keys" in contents, contents[-2000:]
        code, out = stack.run("migrate")
        assert code == 0, out


# The plain scale-out override is rehearsed with monitoring on, below.
@pytest.mark.parametrize("variation", [EDITED, MONITORING, *PROFILE_VARIATIONS], ids=lambda v: v.id)
def test_documented_variation_comes_up_and_serves(variation: Variation, rehearse: Rehearse) -> None:
    with rehearse(variation) as stack:
        stack.up()  # with monitoring: Prometheus is healthy once it scraped every target
        answer = sdk_chat(stack, first_key(stack))
        assert answer["content"] and answer["model"] == chat_model(stack)
        if "monitoring" in variation.profiles:
            assert_dashboards_find_their_metrics(stack)


# Charted, but a series only exists once such a thing happened (a 429, an engine error).
ON_FAILURE_ONLY = {"gateway_rate_limited_total", "gateway_upstream_errors_total"}


def assert_dashboards_find_their_metrics(stack: Rehearsal) -> None:
    """After one chat, Grafana's datasource (Prometheus, scraping through compose's DNS)
    has every metric the dashboard charts, but those that need a failure."""
    probe = "wget -qO- http://127.0.0.1:3000/api/rehearsal/missing-metrics"
    missing: list[str] = []
    for _ in range(30):
        code, out = stack.exec("grafana", ["sh", "-c", probe])
        assert code == 0, out
        missing = [m for m in json.loads(out) if m not in ON_FAILURE_ONLY]
        if not missing:
            return
        time.sleep(1)
    raise AssertionError(f"charted but never scraped: {missing}")


def test_scale_out_replicas_share_limits_behind_the_load_balancer(rehearse: Rehearse) -> None:
    """The scale-out override, with monitoring: nginx in front of three replicas found
    through Docker's DNS, every replica scraped, one key's limits shared through Redis."""
    with rehearse(SCALE_OUT_MONITORING) as stack:
        stack.up()
        assert len(stack.containers["gateway"]) == 3
        answer = sdk_chat(stack, first_key(stack))  # a stream through nginx, unbuffered
        assert answer["content"] and answer["streamed"]
        key = first_key(stack, rpm="3")
        script = (
            "import sys, httpx\n"
            "url, key, model = sys.argv[1:4]\n"
            "body = {'model': model, 'messages': [{'role': 'user', 'content': 'hi'}]}\n"
            "with httpx.Client() as c:\n"
            "    for _ in range(4):\n"
            "        r = c.post(url + '/chat/completions', json=body,\n"
            "                   headers={'authorization': 'Bearer ' + key})\n"
            "        print(r.status_code)\n"
        )
        code, out = stack.host(["python", "-c", script, base_url(stack), key, chat_model(stack)])
        assert code == 0, out
        # nginx spreads the four over three replicas; Redis makes the fourth the key's 429.
        assert out.split() == ["200", "200", "200", "429"]
        assert_dashboards_find_their_metrics(stack)
        code, out = stack.exec("prometheus", ["curl", "-s", "http://127.0.0.1:9090/api/v1/targets"])
        targets = json.loads(out)["data"]["activeTargets"]
        assert sum(t["job"] == "gateway" and t["health"] == "up" for t in targets) == 3


def test_models_tool_runs_as_documented(rehearse: Rehearse) -> None:
    """`docker compose run --rm models` (list is its default command)."""
    with rehearse(DEFAULT, targets=("models",)) as stack:
        code, out = stack.run("models")
        assert code == 0, out
        assert "llama-3.3-70b-iq2m" in out and "all-minilm-l6-v2" in out
