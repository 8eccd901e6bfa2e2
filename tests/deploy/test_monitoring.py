"""Prometheus scrape config and the provisioned Grafana dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.deploy.init import render
from tests.deploy.compose import COMPOSE, ROOT, load
from tests.deploy.variations import VARIATIONS, Variation

DEPLOY = ROOT / "deploy"
GATEWAY_METRICS = (
    "gateway_requests_total",
    "gateway_request_duration_seconds",
    "gateway_time_to_first_token_seconds",
    "gateway_tokens_total",
    "gateway_upstream_errors_total",
    "gateway_requests_in_flight",
    "gateway_upstream_healthy",
    "gateway_rate_limited_total",
)
VLLM_METRICS = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds",
    "vllm:generation_tokens_total",
)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana/dashboards/gateway.json").read_text()))


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("metric", GATEWAY_METRICS + VLLM_METRICS)
def test_dashboard_charts_every_metric(dashboard: dict[str, Any], metric: str) -> None:
    assert any(metric in expr for expr in _exprs(dashboard)), metric


def test_dashboard_covers_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for words in (
        "requests",
        "tokens / s",
        "time to first token",
        "429",
        "upstream healthy",
        "kv cache",
        "queue",
    ):
        assert words in titles, words
    assert 'status="429"' in " ".join(_exprs(dashboard))


def test_dashboard_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    (source,) = provisioned["datasources"]
    assert source["url"] == "http://prometheus:9090"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]


def test_grafana_finds_the_dashboard_where_compose_mounts_it() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/gateway.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    grafana = load(COMPOSE)["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in grafana["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]


def _jobs(name: str) -> dict[str, Any]:
    config = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.mark.parametrize("variation", VARIATIONS, ids=lambda v: v.id)
def test_prometheus_scrapes_the_gateway_and_every_engine(
    variation: Variation, tmp_path: Path
) -> None:
    """However a user runs the stack, the config Prometheus mounts names every running vLLM
    engine (an engine a profile adds is scraped too) and the gateway."""
    env_file = tmp_path / ".env"
    env_file.write_text(render((ROOT / ".env.example").read_text(), None)[0])
    project = variation.load(env_file, targets=("prometheus",))
    (mount,) = (
        v.split(":")[0]
        for v in project.services["prometheus"]["volumes"]
        if v.endswith(":/etc/prometheus/prometheus.yml:ro")
    )
    jobs = _jobs(mount.removeprefix("./deploy/prometheus/"))
    (gateway,) = jobs["gateway"]["dns_sd_configs"]
    assert gateway["names"] == ["gateway"] and gateway["port"] == 8080
    (engines,) = jobs["vllm"]["dns_sd_configs"]
    running = {
        name
        for name, spec in project.services.items()
        if str(spec.get("image", "")).startswith("vllm/") and spec.get("restart") != "no"
    }
    assert running >= {"vllm", "embed"} and set(engines["names"]) == running
    assert engines["port"] == 8000
