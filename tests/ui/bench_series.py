"""Time `usage_series` (GET /admin/usage/series) over 1M synthetic usage events.

    python -m tests.ui.bench_series [--events 1000000]

Starts an embedded Postgres (pgserver), migrates a fresh database, COPYs the events in
(30 days, 20 keys, 5 models, ~4% 429s, TTFT on streamed requests), builds the rollup,
ANALYZEs, and prints the median of several runs of the queries the console makes. Not
collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.usage import rollup
from gateway.usage.report import SeriesQuery, usage_series
from tests.postgres import new_server

COLUMNS = (
    "request_id, key_id, model, route, upstream, status, prompt_tokens, completion_tokens,"
    " duration_ms, ttft_ms, streamed, cancelled, created_at"
)
MODELS = ["llama-3.3-70b", "qwen2.5-32b", "smollm2", "minilm", "mistral-7b"]
KEYS = [f"key_{i:020d}" for i in range(20)]


def load(dsn: str, events: int, now: datetime) -> float:
    rng = random.Random(42)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY usage_events ({COLUMNS}) FROM STDIN") as copy:
            for i in range(events):
                streamed = rng.random() < 0.5
                status = 429 if rng.random() < 0.04 else 200
                copy.write_row(
                    (
                        f"req-{i}",
                        rng.choice(KEYS),
                        rng.choice(MODELS),
                        "/v1/chat/completions",
                        "http://vllm:8000",
                        status,
                        rng.randint(10, 4000),
                        rng.randint(1, 1000),
                        rng.uniform(50, 20000),
                        rng.uniform(30, 2000) if streamed and status == 200 else None,
                        streamed,
                        False,
                        now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                    )
                )
        for sql in rollup.REBUILD:  # what the writer keeps batch by batch
            cur.execute(sql)
        cur.execute("ANALYZE usage_events")
        cur.execute("ANALYZE usage_rollup")
    return time.perf_counter() - started


async def measure(url: str, now: datetime, runs: int) -> list[tuple[str, float, int]]:
    engine = create_engine(url, 2)
    cases = {
        "hour x model, last 24 h": dict(bucket="hour", group_by="model"),
        "hour x key, last 7 days": dict(
            bucket="hour", group_by="key", since=(now - timedelta(days=7)).isoformat()
        ),
        "day x model, 30 days (every event)": dict(bucket="day", group_by="model"),
        "day x key, 30 days (every event)": dict(bucket="day", group_by="key"),
        "hour x model, one key, 7 days": dict(
            bucket="hour",
            group_by="model",
            key_id=KEYS[3],
            since=(now - timedelta(days=7)).isoformat(),
        ),
    }
    results = []
    try:
        for name, params in cases.items():
            query = SeriesQuery.parse(now=now, **params)
            times = []
            rows = 0
            for _ in range(runs):
                async with engine.connect() as conn:
                    started = time.perf_counter()
                    body = await usage_series(conn, query)
                    times.append(time.perf_counter() - started)
                rows = len(body["data"])
            results.append((name, statistics.median(times), rows))
    finally:
        await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    server = new_server("gateway-bench-")
    try:
        server.psql("CREATE DATABASE bench;")
        from sqlalchemy.engine import make_url

        url = make_url(server.get_uri()).set(database="bench")
        url_text = url.render_as_string(hide_password=False)
        upgrade(url_text)
        now = datetime.now(UTC)
        seconds = load(url.set(drivername="postgresql").render_as_string(False), args.events, now)
        print(f"COPY of {args.events:,} events + ANALYZE: {seconds:.1f} s")
        for name, median, rows in asyncio.run(measure(url_text, now, args.runs)):
            print(f"{name:40s} {median * 1000:8.1f} ms  ({rows} rows)")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
