"""Stand-ins for the monitoring profile's Prometheus and Grafana that check what ours depend
on, from inside the compose network, with the files compose mounts:

- `prometheus --config.file=PATH ...` (the service's own command): discovers every target
  of every `dns_sd_configs` job through DNS, scrapes each, and reads the exposition with
  prometheus-client's parser; `/-/ready` answers 200 (the service's healthcheck) only once
  every target was scraped successfully. `/api/v1/targets` and
  `/api/v1/label/__name__/values` answer as Prometheus does, from what was scraped.
- `grafana`: reads its provisioned datasources and dashboards; `/api/health` answers 200
  once every datasource answers, and `/api/rehearsal/missing-metrics` lists the metrics the
  dashboards chart that no datasource has.

Mounted files are found through REHEARSAL_MOUNTS (JSON: container path -> path here).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import yaml
from aiohttp import ClientSession, ClientTimeout, web
from prometheus_client.parser import text_string_to_metric_families

_METRIC = re.compile(r"\b(gateway_[a-z0-9_]+|vllm:[a-z0-9_:]+)")


def host_path(container_path: str) -> Path:
    mounts: dict[str, str] = json.loads(os.environ.get("REHEARSAL_MOUNTS", "{}"))
    for target, source in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return Path(source) / container_path[len(target) :].lstrip("/")
    return Path(container_path)


class Prometheus:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.targets: dict[str, dict[str, Any]] = {}
        self.names: set[str] = set()

    def discover(self) -> list[tuple[str, str, str]]:
        found = []
        for job in self.config.get("scrape_configs", []):
            path = job.get("metrics_path", "/metrics")
            for sd in job.get("dns_sd_configs", []):
                for name in sd["names"]:
                    try:
                        infos = socket.getaddrinfo(name, sd["port"], socket.AF_INET)
                    except socket.gaierror:
                        continue
                    for address in sorted({i[4][0] for i in infos}):
                        found.append((job["job_name"], name, f"{address}:{sd['port']}{path}"))
        return found

    async def scrape_forever(self) -> None:
        async with ClientSession(timeout=ClientTimeout(total=5)) as session:
            while True:
                for job, name, target in self.discover():
                    state = self.targets.setdefault(target, {"job": job, "service": name})
                    try:
                        async with session.get(f"http://{target}") as response:
                            text = await response.text()
                            if response.status != 200:
                                raise ValueError(f"HTTP {response.status}")
                        samples = {
                            s.name for f in text_string_to_metric_families(text) for s in f.samples
                        }
                        self.names |= samples
                        state.update(health="up", lastError="", ever_up=True)
                    except Exception as exc:  # every failure is a target's state, as in Prometheus
                        state.update(health="down", lastError=repr(exc))
                await asyncio.sleep(1)

    def ready(self) -> bool:
        jobs = {job["job_name"] for job in self.config.get("scrape_configs", [])}
        seen = {t["job"] for t in self.targets.values()}
        return (
            bool(self.targets)
            and jobs <= seen
            and all(t.get("ever_up") for t in self.targets.values())
        )

    def app(self) -> web.Application:
        async def ready(_: web.Request) -> web.Response:
            return web.Response(status=200 if self.ready() else 503, text=str(self.ready()))

        async def targets(_: web.Request) -> web.Response:
            active = [{"scrapeUrl": k, **v} for k, v in self.targets.items()]
            return web.json_response({"status": "success", "data": {"activeTargets": active}})

        async def names(_: web.Request) -> web.Response:
            return web.json_response({"status": "success", "data": sorted(self.names)})

        app = web.Application()
        app.router.add_get("/-/ready", ready)
        app.router.add_get("/api/v1/targets", targets)
        app.router.add_get("/api/v1/label/__name__/values", names)
        return app


def _provisioned() -> tuple[list[dict[str, Any]], set[str]]:
    """Grafana's provisioned datasources, and every metric its dashboards chart."""
    provisioning = host_path("/etc/grafana/provisioning")
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yml"))
        for source in yaml.safe_load(path.read_text()).get("datasources", [])
    ]
    charted: set[str] = set()
    for path in sorted((provisioning / "dashboards").glob("*.yml")):
        for provider in yaml.safe_load(path.read_text()).get("providers", []):
            for board in sorted(host_path(provider["options"]["path"]).glob("*.json")):
                charted |= set(_METRIC.findall(board.read_text()))
    return sources, charted


async def _names(session: ClientSession, source: dict[str, Any]) -> set[str]:
    url = source["url"].rstrip("/") + "/api/v1/label/__name__/values"
    async with session.get(url) as response:
        return set((await response.json())["data"])


async def grafana_problems() -> list[str]:
    """Grafana is healthy once its datasources answer and a dashboard is provisioned."""
    sources, charted = _provisioned()
    if not sources or not charted:
        return ["no datasource or no dashboard provisioned"]
    problems = []
    async with ClientSession(timeout=ClientTimeout(total=5)) as session:
        for source in sources:
            try:
                await _names(session, source)
            except Exception as exc:  # reported as a health problem, as Grafana would
                problems.append(f"datasource {source['url']}: {exc!r}")
    return problems


async def missing_metrics() -> list[str]:
    """Charted metrics that no datasource has (a series exists once something happened:
    a 429 for the rate-limit chart, a request for the latency charts)."""
    sources, charted = _provisioned()
    async with ClientSession(timeout=ClientTimeout(total=5)) as session:
        names = set().union(*[await _names(session, source) for source in sources])
    return sorted(m for m in charted if not _exists(m, names))


def _exists(metric: str, names: set[str]) -> bool:
    return any(n == metric or n.startswith(metric + "_") for n in names)


async def grafana() -> None:
    async def health(_: web.Request) -> web.Response:
        problems = await grafana_problems()
        return web.json_response({"problems": problems}, status=503 if problems else 200)

    async def missing(_: web.Request) -> web.Response:
        return web.json_response(await missing_metrics())

    app = web.Application()
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/rehearsal/missing-metrics", missing)
    await _serve(app, 3000)


async def prometheus(argv: list[str]) -> None:
    flag = next(a for a in argv if a.startswith("--config.file="))
    config = yaml.safe_load(host_path(flag.split("=", 1)[1]).read_text())
    server = Prometheus(config)
    task = asyncio.create_task(server.scrape_forever())
    await _serve(server.app(), 9090)
    task.cancel()


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    asyncio.run(prometheus(rest) if kind == "prometheus" else grafana())
