"""Measure what the gateway adds on top of an engine that answers instantly.

    python -m benchmarks.run                 # ~100 s: headline table + two variants
    python -m benchmarks.run --quick         # ~30 s
    python -m benchmarks.run --json out.json --profile /tmp/gateway.svg
    python -m benchmarks.run --client-compare   # httpx vs aiohttp as the upstream client

Starts the fake engine (`benchmarks.fake_upstream`) and `gateway serve` (one worker, the
default configuration apart from GATEWAY_UPSTREAMS and GATEWAY_ADMIN_KEY), then runs every
scenario twice, side by side: straight at the engine, and through the gateway. The
differences are what the gateway costs. The load generator, the gateway and the engine
share this machine's cores; nothing is pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.fake_upstream import install_uvloop
from benchmarks.loadgen import LoadSpec, chat_body, run_load
from benchmarks.procs import (
    Service,
    clean_env,
    free_port,
    gateway_command,
    machine_busy_seconds,
    self_cpu_seconds,
    wait_quiet,
)

CHUNKS = 20
CHUNK_DELAY_MS = 5.0
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS_C32 = 1500.0
# With keys, limits and usage on (the database variant), against a bare uvicorn + aiohttp
# proxy (benchmarks/client_proxy.py) measured beside it in the same run.
TARGET_KEYED_ADDED_P50_MS = 0.5
TARGET_CPU_VS_BARE = 1.5
# The non-streamed scenarios, where the proxy's own cost is all there is to see.
_PLAIN = ("chat_c1", "chat_c32")


@dataclass(frozen=True, slots=True)
class Timing:
    warmup_s: float
    measure_s: float


FULL = Timing(warmup_s=1.0, measure_s=5.0)
QUICK = Timing(warmup_s=0.5, measure_s=2.5)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    stream: bool
    concurrency: int


SCENARIOS = (
    Scenario("chat_c1", "non-streamed, c=1", stream=False, concurrency=1),
    Scenario("chat_c32", "non-streamed, c=32", stream=False, concurrency=32),
    Scenario("stream_c1", f"streamed {CHUNKS}x{CHUNK_DELAY_MS:g}ms, c=1", True, 1),
    Scenario("stream_c32", f"streamed {CHUNKS}x{CHUNK_DELAY_MS:g}ms, c=32", True, 32),
)
_BY_KEY = {s.key: s for s in SCENARIOS}

# (label, summary key) per scenario, in table order.
_ROWS: dict[str, list[tuple[str, str]]] = {
    "chat_c1": [("latency p50 ms", "latency_p50_ms"), ("latency p99 ms", "latency_p99_ms")],
    "chat_c32": [
        ("req/s", "rps"),
        ("latency p50 ms", "latency_p50_ms"),
        ("latency p99 ms", "latency_p99_ms"),
    ],
    "stream_c1": [
        ("first chunk p50 ms", "ttft_p50_ms"),
        ("first chunk p99 ms", "ttft_p99_ms"),
        ("chunk gap p50 ms", "gap_p50_ms"),
        ("chunk gap p99 ms", "gap_p99_ms"),
    ],
    "stream_c32": [
        ("streams/s", "rps"),
        ("first chunk p50 ms", "ttft_p50_ms"),
        ("first chunk p99 ms", "ttft_p99_ms"),
        ("chunk gap p99 ms", "gap_p99_ms"),
    ],
}


def measure(
    base_url: str,
    scenario: Scenario,
    timing: Timing,
    headers: dict[str, str],
    watched: dict[str, Service],
) -> dict[str, Any]:
    """One closed-loop phase; the summary plus each process's CPU use (% of one core)."""
    spec = LoadSpec(
        url=base_url + "/v1/chat/completions",
        body=chat_body(scenario.stream, CHUNKS),
        concurrency=scenario.concurrency,
        duration_s=timing.measure_s,
        warmup_s=timing.warmup_s,
        stream=scenario.stream,
        headers=headers,
    )
    cpu_before = {name: svc.cpu_seconds() for name, svc in watched.items()}
    self_before, busy_before = self_cpu_seconds(), machine_busy_seconds()
    started = time.perf_counter()
    result = asyncio.run(run_load(spec))
    wall = time.perf_counter() - started
    used = {"loadgen": self_cpu_seconds() - self_before}
    for name, svc in watched.items():
        before, after = cpu_before[name], svc.cpu_seconds()
        if before is not None and after is not None:
            used[name] = after - before
    busy_after = machine_busy_seconds()
    if busy_before is not None and busy_after is not None:
        # Whatever else ran on the machine meanwhile: it competes for the same cores.
        used["other"] = max(0.0, busy_after - busy_before - sum(used.values()))
    summary = result.summary()
    summary["cpu_pct"] = {name: round(seconds / wall * 100) for name, seconds in used.items()}
    summary["cpu_us_per_request"] = {
        name: round(seconds / max(result.answered, 1) * 1e6)
        for name, seconds in used.items()
        if name != "other"
    }
    if result.errors:
        print(f"  ! {result.errors} errors, e.g. {result.error_samples[0]}", file=sys.stderr)
    return summary


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.timing = QUICK if args.quick else FULL
        self.log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="gateway-bench-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Once the gateway checks keys, the admin key (also valid on /v1/*) gets the bench
        # through without a database; until then the header is simply ignored.
        self.api_key = args.api_key or f"bench-{secrets.token_hex(8)}"
        self.headers = {"authorization": f"Bearer {self.api_key}"}
        self.services: list[Service] = []

    def start_upstream(self) -> tuple[Service, str]:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "benchmarks.fake_upstream",
            "--port",
            str(port),
            "--chunks",
            str(CHUNKS),
            "--delay-ms",
            str(CHUNK_DELAY_MS),
        ]
        service = self._start("upstream", command, clean_env({}), "upstream.log")
        url = f"http://127.0.0.1:{port}"
        service.wait_ready(url + "/health")
        return service, url

    def start_gateway(
        self, upstream: str, extra_env: dict[str, str], log: str
    ) -> tuple[Service, str]:
        port = free_port()
        env = {"GATEWAY_UPSTREAMS": upstream, **extra_env, **self._gateway_env()}
        if not self.args.api_key:
            env.setdefault("GATEWAY_ADMIN_KEY", self.api_key)
        env = clean_env(env)
        service = self._start("gateway", gateway_command(port), env, log)
        url = f"http://127.0.0.1:{port}"
        service.wait_ready(url + "/readyz", timeout_s=60)
        return service, url

    def start_proxy(self, client: str, upstream: str) -> tuple[Service, str]:
        port = free_port()
        command = [sys.executable, "-m", "benchmarks.client_proxy", "--client", client]
        command += ["--upstream", upstream, "--port", str(port)]
        service = self._start(f"proxy-{client}", command, clean_env({}), f"proxy-{client}.log")
        url = f"http://127.0.0.1:{port}"
        service.wait_ready(url + "/health")
        return service, url

    def _gateway_env(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.args.gateway_env)
        return {k: v for k, v in pairs}

    def _start(self, name: str, command: list[str], env: dict[str, str], log: str) -> Service:
        service = Service(name, command, self.log_dir / log, env)
        self.services.append(service)
        return service

    def stop(self, service: Service) -> None:
        service.stop()
        self.services.remove(service)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def phase(
        self,
        target: str,
        url: str,
        key: str,
        watched: dict[str, Service],
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        scenario = _BY_KEY[key]
        print(f"  {scenario.title:<28} {target:<10}", end="", flush=True, file=sys.stderr)
        summary = measure(url, scenario, self.timing, headers or self.headers, watched)
        print(f" {summary['rps']:>8.0f} req/s", file=sys.stderr)
        return summary


def run_main(bench: Bench) -> dict[str, Any]:
    args = bench.args
    upstream, upstream_url = bench.start_upstream()
    gateway, gateway_url = bench.start_gateway(upstream_url, {}, "gateway.log")
    print(f"logs in {bench.log_dir}", file=sys.stderr)
    watched = {"upstream": upstream, "gateway": gateway}
    bare, bare_url = bench.start_proxy("aiohttp", upstream_url)
    bare_watched = {"upstream": upstream, "gateway": bare}
    results: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        results[scenario.key] = {
            "direct": bench.phase("direct", upstream_url, scenario.key, {"upstream": upstream}),
            "gateway": bench.phase("gateway", gateway_url, scenario.key, watched),
        }
        if scenario.key in _PLAIN:
            # What any Python proxy on this stack costs, in the same minute.
            results[scenario.key]["bare"] = bench.phase(
                "bare proxy", bare_url, scenario.key, bare_watched
            )
    report: dict[str, Any] = {"scenarios": results}
    if args.profile:
        report["profile"] = profile(bench, gateway, gateway_url, Path(args.profile))
    if not args.quick and not args.no_variant:
        bench.stop(gateway)
        gateway, gateway_url = bench.start_gateway(
            upstream_url, {"GATEWAY_ACCESS_LOG": "false"}, "gateway-no-access-log.log"
        )
        watched = {"upstream": upstream, "gateway": gateway}
        report["access_log_off"] = {
            key: bench.phase("gw no-log", gateway_url, key, watched)
            for key in ("chat_c1", "chat_c32")
        }
        bench.stop(gateway)
        try:
            report["with_database"] = db_variant(bench, upstream, upstream_url, bare, bare_url)
        except Exception as exc:  # a variant must not cost the headline figures
            print(f"  database variant failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            report["with_database"] = {"error": f"{type(exc).__name__}: {exc}"}
    report["checks"] = checks(results)
    db = report.get("with_database") or {}
    if "error" not in db:
        d1 = results["chat_c1"]["direct"]["latency_p50_ms"]
        report["checks"]["keyed"] = {name: keyed_checks(p, d1) for name, p in db.items()}
    return report


def db_variant(
    bench: Bench, upstream: Service, upstream_url: str, bare: Service, bare_url: str
) -> dict[str, Any]:
    """The production hot path: embedded Postgres, a real API key with limits high enough
    never to refuse (so the limiter really runs), usage events; limits in memory, then in
    Redis when one answers on 127.0.0.1:6379. Each phase follows one of the bare proxy
    (same load), so the two are compared a few seconds apart."""
    from gateway.local.postgres import EmbeddedPostgres

    postgres = EmbeddedPostgres(bench.log_dir / "pgdata")
    database_url = postgres.start()
    admin_key = f"bench-admin-{secrets.token_hex(8)}"
    backends = {"memory": {}, "redis": {"GATEWAY_REDIS_URL": REDIS_URL}}
    if not redis_answers():
        del backends["redis"]
    report: dict[str, Any] = {}
    try:
        for backend, extra in backends.items():
            env = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_ADMIN_KEY": admin_key, **extra}
            gateway, url = bench.start_gateway(upstream_url, env, f"gateway-db-{backend}.log")
            try:
                key = create_key(url, admin_key)
                watched = {"upstream": upstream, "gateway": gateway}
                bare_watched = {"upstream": upstream, "gateway": bare}
                headers = {"authorization": f"Bearer {key}"}
                phases: dict[str, Any] = {"bare": {}}
                for name in _PLAIN:
                    phases["bare"][name] = bench.phase("bare proxy", bare_url, name, bare_watched)
                    phases[name] = bench.phase(f"gw + db ({backend})", url, name, watched, headers)
                time.sleep(1.5)  # one flush interval: every answered request is written
                phases["usage_events_written"] = usage_events_written(url)
                report[backend] = phases
            finally:
                bench.stop(gateway)
    finally:
        postgres.stop()
    return report


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def usage_events_written(base_url: str) -> float:
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            if line.startswith("gateway_usage_events_written_total "):
                return float(line.split()[1])
    return 0.0


def create_key(base_url: str, admin_key: str) -> str:
    """A fresh API key through the admin API, with limits that apply but never refuse."""
    request = urllib.request.Request(  # noqa: S310 (our own http:// URL)
        base_url + "/admin/keys",
        data=orjson.dumps(
            {"name": "benchmark", "rpm": 100_000_000, "tpm": 2_000_000_000, "max_parallel": 10_000}
        ),
        headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(orjson.loads(response.read())["key"])


def profile(bench: Bench, gateway: Service, url: str, out: Path) -> dict[str, Any]:
    """Sample the gateway with py-spy during one extra c=32 phase (not a measured one)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    exe = str(py_spy) if py_spy.is_file() else shutil.which("py-spy")
    if exe is None:
        print("  py-spy not found (pip install py-spy): no profile", file=sys.stderr)
        return {"error": "py-spy not installed"}
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    duration = bench.timing.warmup_s + bench.timing.measure_s
    command = [exe, "record", "--pid", str(gateway.pid), "--rate", "200", "--format", fmt]
    command += ["--duration", str(int(duration)), "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let py-spy attach before the load starts
    summary = bench.phase("gw+py-spy", url, "chat_c32", {"gateway": gateway})
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0:
        print(f"  py-spy failed: {err.decode(errors='replace')[-300:]}", file=sys.stderr)
    return {"path": str(out), "format": fmt, "rps_under_profiler": summary["rps"]}


def checks(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    c1, c32 = results["chat_c1"], results["chat_c32"]
    added = c1["gateway"]["latency_p50_ms"] - c1["direct"]["latency_p50_ms"]
    rps = c32["gateway"]["rps"]
    return {
        "added_p50_ms_c1": round(added, 3),
        "added_p50_target_ms": TARGET_ADDED_P50_MS,
        "added_p50_ok": added <= TARGET_ADDED_P50_MS,
        "rps_c32": rps,
        "rps_c32_target": TARGET_RPS_C32,
        "rps_c32_ok": rps >= TARGET_RPS_C32,
        "errors": sum(phase["errors"] for r in results.values() for phase in r.values()),
    }


def cpu_ratio(gateway: dict[str, Any], bare: dict[str, Any]) -> float | None:
    """The gateway's CPU per request over the bare proxy's, at the same load."""
    gw = gateway.get("cpu_us_per_request", {}).get("gateway")
    base = bare.get("cpu_us_per_request", {}).get("gateway")
    return gw / base if gw and base else None


def keyed_checks(phases: dict[str, Any], direct_c1_ms: float) -> dict[str, Any]:
    """The keyed hot path's targets: added p50 at c=1, and CPU per request at c=32 next
    to the bare proxy's."""
    added = phases["chat_c1"]["latency_p50_ms"] - direct_c1_ms
    bare_added = phases["bare"]["chat_c1"]["latency_p50_ms"] - direct_c1_ms
    ratio = cpu_ratio(phases["chat_c32"], phases["bare"]["chat_c32"])
    return {
        "added_p50_ms_c1": round(added, 3),
        "added_p50_ok": added <= TARGET_KEYED_ADDED_P50_MS,
        "bare_added_p50_ms_c1": round(bare_added, 3),
        "cpu_vs_bare_c32": None if ratio is None else round(ratio, 2),
        "cpu_vs_bare_ok": ratio is not None and ratio <= TARGET_CPU_VS_BARE,
    }


def _fmt(value: float, key: str) -> str:
    if key == "rps":
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _cpu_lines(direct: dict[str, Any], gateway: dict[str, Any]) -> list[str]:
    """CPU per request (robust to other load on the machine) and how busy everything was."""
    engine = direct.get("cpu_us_per_request", {}).get("upstream", "-")
    proxy = gateway.get("cpu_us_per_request", {}).get("gateway", "-")
    pct = gateway.get("cpu_pct", {})
    busy = "/".join(str(pct.get(k, "-")) for k in ("gateway", "upstream", "loadgen", "other"))
    return [
        f"{'':<25} {'cpu us/req eng|gw':<19} {engine!s:>9} {proxy!s:>9}",
        f"{'':<25} {'busy % gw/eng/lg/oth':<19} {busy:>19}",
    ]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(report: dict[str, Any], meta: dict[str, Any]) -> str:
    results, check = report["scenarios"], report["checks"]
    head = f"{'scenario':<25} {'metric':<19} {'direct':>9} {'gateway':>9} {'added':>8} "
    head += f"{'gw/direct':>9}  target"
    lines = [
        f"gateway benchmark  {meta['date']}  commit {meta.get('commit')}  "
        f"{meta['cores']} cores ({meta['cpu']}), "
        f"Python {meta['python']}, 1 gateway worker, default config (+ GATEWAY_ADMIN_KEY)",
        "load generator, gateway and fake engine share the cores; nothing pinned; "
        f"machine busy before start: {meta.get('busy_before_pct', '?')}% of a core",
        "",
        head,
        "-" * len(head + " " * 14),
    ]
    for scenario in SCENARIOS:
        direct, gateway = results[scenario.key]["direct"], results[scenario.key]["gateway"]
        title = scenario.title
        for label, key in _ROWS[scenario.key]:
            d, g = direct.get(key, float("nan")), gateway.get(key, float("nan"))
            added = "" if key == "rps" else f"{g - d:+.2f}"
            target = ""
            if scenario.key == "chat_c1" and key == "latency_p50_ms":
                target = f"<= +{TARGET_ADDED_P50_MS:g} ms  {_verdict(check['added_p50_ok'])}"
            if scenario.key == "chat_c32" and key == "rps":
                target = f">= {TARGET_RPS_C32:,.0f}  {_verdict(check['rps_c32_ok'])}"
            ratio = f"{g / d:.2f}x" if d else ""
            lines.append(
                f"{title:<25} {label:<19} {_fmt(d, key):>9} {_fmt(g, key):>9} {added:>8} "
                f"{ratio:>9}  {target}".rstrip()
            )
            title = ""
        lines += _cpu_lines(direct, gateway)
    other = max(
        (p[t].get("cpu_pct", {}).get("other", 0) for p in results.values() for t in p),
        default=0,
    )
    if other > 25:
        lines.append(
            f"NOTE: other processes kept up to {other}% of a core busy during a phase: "
            "these figures are lower than a quiet machine gives"
        )
    if check["errors"]:
        lines.append(f"ERRORS: {check['errors']} failed requests (see the logs)")
    if "bare" in results["chat_c1"]:
        d1 = results["chat_c1"]["direct"]["latency_p50_ms"]
        b1, b32 = results["chat_c1"]["bare"], results["chat_c32"]["bare"]
        cpu_x = cpu_ratio(results["chat_c32"]["gateway"], b32)
        lines += [
            "",
            "bare uvicorn + aiohttp proxy (benchmarks/client_proxy.py), measured after each "
            "gateway phase:",
            f"  non-streamed c=1   latency p50 {b1['latency_p50_ms']:.2f} ms "
            f"(added {b1['latency_p50_ms'] - d1:+.2f}; gateway "
            f"{results['chat_c1']['gateway']['latency_p50_ms'] - d1:+.2f})",
            f"  non-streamed c=32  {b32['rps']:,.0f} req/s, "
            f"{b32['cpu_us_per_request'].get('gateway', '-')} us CPU/req "
            f"(gateway: {_ratio(cpu_x)} of that)",
        ]
    variant = report.get("access_log_off")
    if variant:
        c1, c32 = variant["chat_c1"], variant["chat_c32"]
        d1 = results["chat_c1"]["direct"]["latency_p50_ms"]
        lines += [
            "",
            "variant GATEWAY_ACCESS_LOG=false (same engine, fresh gateway):",
            f"  non-streamed c=1   latency p50 {c1['latency_p50_ms']:.2f} ms "
            f"(added {c1['latency_p50_ms'] - d1:+.2f})",
            f"  non-streamed c=32  {c32['rps']:,.0f} req/s "
            f"(default config: {results['chat_c32']['gateway']['rps']:,.0f})",
        ]
    db = report.get("with_database")
    if db and "error" not in db:
        d1 = results["chat_c1"]["direct"]["latency_p50_ms"]
        base_rps = results["chat_c32"]["gateway"]["rps"]
        default_us = results["chat_c32"]["gateway"]["cpu_us_per_request"].get("gateway")
        lines += [
            "",
            "variant with GATEWAY_DATABASE_URL (embedded Postgres), a real API key with rpm/tpm/"
            "max_parallel limits, usage events:",
        ]
        for backend, phases in db.items():
            c1, c32 = phases["chat_c1"], phases["chat_c32"]
            kept = c32["rps"] / base_rps if base_rps else 0.0
            answered = c1["requests"] + c32["requests"]
            keyed = keyed_checks(phases, d1)
            bare32 = phases["bare"]["chat_c32"]
            lines += [
                f"  limits in {backend}:",
                f"    non-streamed c=1   latency p50 {c1['latency_p50_ms']:.2f} ms "
                f"(added {keyed['added_p50_ms_c1']:+.2f}, target <= "
                f"+{TARGET_KEYED_ADDED_P50_MS:g} ms: {_verdict(keyed['added_p50_ok'])}; "
                f"bare proxy just before: {keyed['bare_added_p50_ms_c1']:+.2f})",
                f"    non-streamed c=32  {c32['rps']:,.0f} req/s = {kept:.0%} of pass-through "
                f"(target >= 80%: {_verdict(kept >= 0.8)}), "
                f"{c32['cpu_us_per_request'].get('gateway', '-')} us CPU/req "
                f"(pass-through: {default_us})",
                f"    CPU/req vs the bare proxy just before ({bare32['rps']:,.0f} req/s, "
                f"{bare32['cpu_us_per_request'].get('gateway', '-')} us): "
                f"{_ratio(keyed['cpu_vs_bare_c32'])} "
                f"(target <= {TARGET_CPU_VS_BARE:g}x: {_verdict(keyed['cpu_vs_bare_ok'])})",
                f"    usage events written {phases['usage_events_written']:,.0f} "
                f"for {answered:,} measured requests (plus warm-up)",
            ]
    elif db:
        lines += ["", f"variant with a database: failed ({db['error']})"]
    if "profile" in report and "path" in report["profile"]:
        lines.append(f"\nprofile: {report['profile']['path']}")
    return "\n".join(lines)


def run_compare(bench: Bench) -> dict[str, Any]:
    from benchmarks.client_proxy import CLIENTS

    upstream, upstream_url = bench.start_upstream()
    print(f"logs in {bench.log_dir}", file=sys.stderr)
    rows: dict[str, dict[str, Any]] = {
        "direct": {
            key: bench.phase("direct", upstream_url, key, {"upstream": upstream})
            for key in ("chat_c1", "chat_c32")
        }
    }
    for client in CLIENTS:
        proxy, url = bench.start_proxy(client, upstream_url)
        watched = {"upstream": upstream, "gateway": proxy}
        rows[client] = {
            key: bench.phase(client, url, key, watched) for key in ("chat_c1", "chat_c32")
        }
        bench.stop(proxy)
    return {"client_compare": rows}


def render_compare(report: dict[str, Any], meta: dict[str, Any]) -> str:
    rows = report["client_compare"]
    direct = rows["direct"]
    lines = [
        f"upstream client comparison  {meta['date']}  {meta['cores']} cores ({meta['cpu']})",
        "a minimal proxy in front of the fake engine; load generator, proxy and engine share "
        "the cores; nothing pinned",
        "",
        f"{'proxy':<37} {'req/s c=32':>10} {'vs direct':>9} {'p50 c=1 ms':>10} {'added':>6} "
        f"{'cpu us/req':>10} {'other %':>7}",
    ]
    names = {
        "direct": "direct to the engine",
        "aiohttp": "uvicorn ASGI + aiohttp.ClientSession",
        "httpx": "uvicorn ASGI + httpx.AsyncClient",
        "aiohttp-web": "aiohttp.web + aiohttp.ClientSession",
    }
    for name, row in rows.items():
        c1, c32 = row["chat_c1"], row["chat_c32"]
        rps, p50 = c32["rps"], c1["latency_p50_ms"]
        added = "" if name == "direct" else f"{p50 - direct['chat_c1']['latency_p50_ms']:+.2f}"
        per_req = c32["cpu_us_per_request"]
        cpu = per_req.get("upstream" if name == "direct" else "gateway", "")
        lines.append(
            f"{names.get(name, name):<37} {rps:>10,.0f} {rps / direct['chat_c32']['rps']:>8.2f}x "
            f"{p50:>10.2f} {added:>6} {cpu!s:>10} {c32['cpu_pct'].get('other', '')!s:>7}"
        )
    lines.append(
        "cpu us/req: the proxy's CPU time per request at c=32 (the engine's on the direct "
        "row); other %: CPU used by everything else on the machine meanwhile"
    )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from gateway import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "gateway_version": __version__,
        "commit": commit or None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="short phases, no variant (~30 s)")
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    parser.add_argument(
        "--client-compare",
        action="store_true",
        help="compare httpx and aiohttp as the upstream client of a minimal proxy",
    )
    parser.add_argument(
        "--profile", metavar="PATH", help="py-spy profile of the gateway at c=32 (.svg/.json/.txt)"
    )
    parser.add_argument(
        "--no-variant",
        action="store_true",
        help="skip the variants (access log off; embedded Postgres with a real key)",
    )
    parser.add_argument("--log-dir", help="where process logs go (default: a new temp dir)")
    parser.add_argument(
        "--api-key",
        help="sent as Authorization: Bearer (default: a random key, also set as GATEWAY_ADMIN_KEY)",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway (repeatable), e.g. GATEWAY_DATABASE_URL=...",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for other work on the machine to drop below 25%% "
        "of a core",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_uvloop()
    bench = Bench(args)
    meta = machine()
    busy = wait_quiet(args.wait_quiet)
    meta["busy_before_pct"] = None if busy is None else round(busy)
    if busy is not None and busy > 25:
        print(f"the machine is busy ({busy:.0f}% of a core) before the run", file=sys.stderr)
    started = time.monotonic()
    try:
        if args.client_compare:
            report = run_compare(bench)
            text = render_compare(report, meta)
        else:
            report = run_main(bench)
            text = render(report, meta)
    finally:
        bench.stop_all()
    meta["wall_s"] = round(time.monotonic() - started, 1)
    meta["timing"] = {"warmup_s": bench.timing.warmup_s, "measure_s": bench.timing.measure_s}
    meta["log_dir"] = str(bench.log_dir)
    print()
    print(text)
    print(f"\n({meta['wall_s']} s; logs in {bench.log_dir})")
    if args.json:
        payload = {"meta": meta, **report}
        Path(args.json).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    if args.check and "checks" in report:
        ok = report["checks"]["added_p50_ok"] and report["checks"]["rps_c32_ok"]
        return 0 if ok and not report["checks"]["errors"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
