"""The embedded Postgres's pgvector works on this CPU: HNSW builds and distances.

The wheel's own vector.so needs AVX-512 and kills the server with SIGILL elsewhere; the
Makefile replaces it with a build for this CPU (third_party/pgvector/README.md). On a CPU
without AVX-512, this test fails if that step did not run.
"""

from __future__ import annotations

import random

import psycopg


def test_hnsw_index_and_distances_work(database_url: str) -> None:
    rng = random.Random(7)
    rows = [[rng.uniform(-1, 1) for _ in range(64)] for _ in range(300)]
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE v (id int, e vector(64))")
        with conn.cursor().copy("COPY v (id, e) FROM STDIN") as copy:
            for i, row in enumerate(rows):
                copy.write_row((i, "[" + ",".join(f"{x:.6f}" for x in row) + "]"))
        conn.execute("CREATE INDEX ON v USING hnsw (e vector_cosine_ops)")
        conn.execute("SET enable_seqscan = off")
        query = "[" + ",".join(f"{x:.6f}" for x in rows[42]) + "]"
        nearest = conn.execute(
            "SELECT id, e <=> %s::vector, e <-> %s::vector, (e <#> %s::vector) FROM v "
            "ORDER BY e <=> %s::vector LIMIT 3",
            (query, query, query, query),
        ).fetchall()
    assert nearest[0][0] == 42
    assert abs(nearest[0][1]) < 1e-6 and abs(nearest[0][2]) < 1e-5
    assert nearest[0][3] < 0  # negative inner product of a vector with itself
