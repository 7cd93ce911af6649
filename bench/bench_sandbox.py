"""What the ad-hoc SQL sandbox costs: EventStore.sql against the ordinary runner and raw DuckDB.

Each ad-hoc query runs (1) through `EventStore.sql`, which checks the parse tree
and opens a fresh locked-down DuckDB over the lake as Arrow datasets, (2)
through the ordinary runner over the same snapshot (what `sql()` did before the
sandbox: a warm connection reading the Parquet files itself), (3) as plain
DuckDB over the very files the store lists (the limit), and, where the naive
one-row-per-commit store has an equivalent method and the size is small enough
to build it, (4) through bench/naive.py.
Run: python bench/bench_sandbox.py [--sizes 100000,1000000] [--naive-max 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import common
from bench_queries import Raw

QUERIES = [
    ("count", "SELECT count(*) AS n FROM executions", "get_summary_stats"),
    (
        "cost_by_agent",
        "SELECT agent_name, count(*) AS runs, sum(total_cost) AS cost FROM executions GROUP BY 1 ORDER BY 1",
        "cost_by_agent",
    ),
    (
        "p95_by_agent",
        "SELECT agent_name, quantile_cont(duration, 0.5) AS p50, quantile_cont(duration, 0.95) AS p95 "
        "FROM executions WHERE duration IS NOT NULL GROUP BY 1 ORDER BY 1",
        "duration_percentiles",
    ),
    (
        "newest_100_agent",
        "SELECT id, started_at, total_cost FROM executions WHERE agent_name = 'translator' "
        "ORDER BY started_at DESC LIMIT 100",
        None,
    ),
    (
        "calls_by_model",
        "SELECT name, count(*) AS calls, sum(cost) AS cost FROM events WHERE type = 'llm_call' "
        "GROUP BY 1 ORDER BY 1",
        None,
    ),
]


def run_size(n: int, naive_max: int, log=print) -> dict[str, Any]:
    """Every query at `n` executions through the sandbox, the ordinary runner, raw DuckDB (and naive)."""
    from naive import NaiveStore

    from kagura.observability.analytics.sandbox import check_read_only
    from kagura.observability.eventstore import EventStore

    db, _ = common.build_lake(n, log=log)
    naive = NaiveStore(common.build_naive(n, log=log)) if n <= naive_max else None
    store = EventStore(db, auto_compact=False)
    raw = Raw(store.lake, store.segments())
    out: dict[str, Any] = {"n": n, "queries": {}}
    for name, text, naive_method in QUERIES:
        views = store._views(events="events" in check_read_only(text))
        row = {
            "sandbox": common.measure(lambda text=text: store.sql(text).rows(), repeat=9),
            "runner": common.measure(
                lambda text=text, views=views: store._run_sql(text, "query", views, {}).rows(),
                repeat=9,
            ),
            "raw": common.measure(lambda text=text: raw.run((text, {})), repeat=9),
        }
        if naive is not None and naive_method is not None:
            row["naive"] = common.measure(getattr(naive, naive_method), repeat=3)
        sandboxed = store.sql(text).rows()
        ordinary = store._run_sql(text, "query", views, {}).rows()
        row["same_answer"] = _same(sandboxed, ordinary)
        out["queries"][name] = row
        log(
            f"  {common.size_label(n)} {name}: sandbox {row['sandbox']['warm_ms']:.1f} ms, "
            f"runner {row['runner']['warm_ms']:.1f} ms, raw {row['raw']['warm_ms']:.1f} ms"
            + (f", naive {row['naive']['warm_ms']:.1f} ms" if "naive" in row else "")
            + f", same answer: {row['same_answer']}"
        )
    raw.close()
    store.close()
    return out


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """The same rows, floats within 1e-9 relative: sums over another scan order differ in the last bits."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for key, value in x.items():
            other = y[key]
            if isinstance(value, float) and isinstance(other, float):
                if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif value != other:
                return False
    return True


def table(results: dict[int, dict[str, Any]]) -> str:
    """The figures as a Markdown table (warm medians, ms)."""
    lines = [
        "| size | query | sandbox (ms) | ordinary runner (ms) | raw DuckDB (ms) | naive (ms) | sandbox / runner |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, result in results.items():
        for name, row in result["queries"].items():
            naive = f"{row['naive']['warm_ms']:.0f}" if "naive" in row else "-"
            ratio = row["sandbox"]["warm_ms"] / row["runner"]["warm_ms"]
            lines.append(
                f"| {common.size_label(n)} | {name} | {row['sandbox']['warm_ms']:.1f} | "
                f"{row['runner']['warm_ms']:.1f} | {row['raw']['warm_ms']:.1f} | {naive} | {ratio:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--naive-max", type=int, default=100_000)
    args = parser.parse_args()
    started = time.perf_counter()
    results = {n: run_size(n, args.naive_max) for n in (int(s) for s in args.sizes.split(","))}
    print(json.dumps(common.machine(), indent=2))
    print(table(results))
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
