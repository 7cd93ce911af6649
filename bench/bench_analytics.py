"""Each analytic of sql/ at 1M and 10M executions: EventStore against raw DuckDB on the same files.

The data is the benchmarks' shared lake (bench/common.py build_lake: the fixture
generator's runs written straight into lake segments). The store answers through
its methods (snapshot, views over the listed lake files and the tail, params,
dicts); raw DuckDB runs the very same SQL file with the same params over the same
listed Parquet files (no snapshot, no tail, no dicts): the limit. Warm figures are
the median of several calls on an open store.
Run: python bench/bench_analytics.py [--sizes 1000000,10000000]
Prints a markdown table and writes it to bench/out/analytics.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import common

DAY = 86400.0
TARGET_MS = 500.0
TARGET_RATIO = 1.5


def specs(store: Any, end: float) -> list[dict[str, Any]]:
    """Each analytic: a label, the store call, and the SQL file with the params it binds."""
    recent, baseline = 2 * DAY, 14 * DAY
    window = {"since": end - recent - baseline, "split": end - recent, "until": end}
    return [
        {
            "label": "latency_percentiles()",
            "store": lambda: store.latency_percentiles(),
            "raw": ("latency_percentiles", {"per_day": False}),
        },
        {
            "label": "latency_percentiles(per_day=True)",
            "store": lambda: store.latency_percentiles(per_day=True),
            "raw": ("latency_percentiles", {"per_day": True}),
        },
        {
            "label": "model_latency()",
            "store": lambda: store.model_latency(),
            "raw": ("model_latency", {"per_day": False}),
        },
        {
            "label": "regressions() (2d vs 14d)",
            "store": lambda: store.regressions(now=end),
            "raw": ("regressions", {**window, "alpha": 0.01}),
        },
        {
            "label": "regressions(recent_runs=100)",
            "store": lambda: store.regressions(now=end, recent_runs=100, baseline_runs=500),
            "raw": (
                "regressions",
                {
                    "since": end - 30 * DAY,
                    "until": end,
                    "recent_runs": 100,
                    "baseline_runs": 500,
                    "alpha": 0.01,
                },
            ),
        },
        {
            "label": "agent_health()",
            "store": lambda: store.agent_health(now=end),
            "raw": ("agent_health", {"now": end, "last": 20, "since": end - 30 * DAY}),
        },
        {
            "label": "budget_status(1.00, 30)",
            "store": lambda: store.budget_status(daily=1.0, monthly=30.0, now=end),
            "raw": (
                "budget_status",
                {"now": end, "daily": 1.0, "monthly": 30.0, "days": 7, "since": end - 39 * DAY},
            ),
        },
        {
            "label": "error_groups()",
            "store": lambda: store.error_groups(),
            "raw": ("error_groups", {"limit": 50}),
        },
        {
            "label": "error_groups(since=7d)",
            "store": lambda: store.error_groups(since=end - 7 * DAY),
            "raw": ("error_groups", {"limit": 50, "since": end - 7 * DAY}),
        },
        {
            "label": "cost_by_model()",
            "store": lambda: store.cost_by_model_rows(),
            "raw": ("cost_by_model", {"per_day": False}),
        },
        {
            "label": "cost_by_model(per_day=True)",
            "store": lambda: store.cost_by_model_rows(per_day=True),
            "raw": ("cost_by_model", {"per_day": True}),
        },
        {
            "label": "cost_trend()",
            "store": lambda: store.cost_trend_rows(),
            "raw": ("cost_trend", {"window": 7}),
        },
        {
            "label": "sql(count per agent)",
            "store": lambda: store.sql(ADHOC).rows(),
            "raw": (ADHOC, {}),
        },
    ]


ADHOC = "SELECT agent_name, count(*) AS runs, avg(duration) AS mean FROM executions GROUP BY 1"


class Raw:
    """Plain DuckDB over a store's listed Parquet files."""

    def __init__(self, lake: Path, segments: list[Any]):
        import duckdb

        from kagura.observability.store.engine import local_timezone

        self.con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        self.con.execute(f"SET TimeZone = '{local_timezone()}'")
        for view, attr in (("executions", "executions_path"), ("events", "events_path")):
            files = ", ".join(
                "'" + str(lake / getattr(s, attr)).replace("'", "''") + "'" for s in segments
            )
            self.con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
            )

    def run(self, name: str, params: dict[str, Any]) -> list[Any]:
        """The rows of sql/NAME.sql (or of SQL text) with params bound by name."""
        from kagura.observability.store.engine import load_sql, param_names

        text = name if " " in name else load_sql(name)
        bound = {p: params.get(p) for p in param_names(text)}
        return self.con.execute(text, bound or None).fetchall()

    def close(self) -> None:
        self.con.close()


def run_size(n: int, log=print) -> dict[str, Any]:
    """Build (or reuse) the benchmark lake of n executions and time every analytic on it."""
    from kagura.observability.eventstore import EventStore

    db, _ = common.build_lake(n, log=log)
    store = EventStore(db, auto_compact=False)
    raw = Raw(store.lake, store.segments())
    end = common.BENCH_END_TS
    rows = []
    try:
        for spec in specs(store, end):
            mine = common.measure(spec["store"], repeat=5)
            limit = common.measure(lambda s=spec: raw.run(*s["raw"]), repeat=5)
            ratio = mine["warm_ms"] / limit["warm_ms"] if limit["warm_ms"] else None
            rows.append(
                {
                    "label": spec["label"],
                    "store_first_ms": mine["first_ms"],
                    "store_warm_ms": mine["warm_ms"],
                    "raw_warm_ms": limit["warm_ms"],
                    "ratio": ratio,
                }
            )
            log(
                f"  {common.size_label(n)} {spec['label']}: store {mine['warm_ms']:.0f} ms, "
                f"raw {limit['warm_ms']:.0f} ms"
            )
    finally:
        raw.close()
        store.close()
    return {"n": n, "segments": len(store.segments()), "rows": rows}


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table: one row per analytic, a column pair per size."""
    sizes = [common.size_label(r["n"]) for r in results]
    head = "| analytic | " + " | ".join(
        f"{s} store warm | {s} raw DuckDB | {s} ratio" for s in sizes
    )
    lines = [head + " |", "| --- |" + " ---: | ---: | ---: |" * len(sizes)]
    for index, row in enumerate(results[0]["rows"]):
        cells = [row["label"]]
        for result in results:
            r = result["rows"][index]
            mark = "" if r["store_warm_ms"] <= TARGET_MS else " ⚠"
            cells += [
                f"{r['store_warm_ms']:.0f} ms{mark}",
                f"{r['raw_warm_ms']:.0f} ms",
                f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated run counts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.time()
    results = [run_size(n) for n in sizes]
    info = common.machine()
    text = "\n".join(
        [
            "# Analytics: EventStore against raw DuckDB on the same Parquet files",
            "",
            f"Targets: at 10M executions each analytic answers in <= {TARGET_MS:.0f} ms warm and "
            f"within {TARGET_RATIO}x of the same SQL run by raw DuckDB on the same files. "
            "Warm = median of repeated calls on an open store; ⚠ marks a figure over the time target.",
            "",
            table(results),
            "",
            f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB; Python {info['python']}, "
            f"duckdb {info['duckdb']}, polars {info['polars']}; {info['date']}, commit {info['commit']}. "
            f"Lake segments: {', '.join(str(r['segments']) for r in results)}. "
            f"Took {time.time() - started:.0f} s.",
            "",
        ]
    )
    print(text)
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / "analytics.md").write_text(text, encoding="utf-8")
    (common.OUT / "analytics.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
