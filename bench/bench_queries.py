"""The tutorial's queries at 1M and 10M executions: the store, the naive store, raw DuckDB.

Each query runs through EventStore (warm: median of several runs on an open
store; first: the first call in a fresh process), through bench/naive.py
(the same question answered the way Kagura did), and as plain DuckDB SQL over
the very Parquet files the store lists (the limit: no snapshot, no tail, no
dicts). Run: python bench/bench_queries.py [--sizes 1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

AGENT = "translator"  # a busy agent: 14% of root runs
DAY = 86400.0


def query_specs(store: Any, naive: Any, ids: dict[str, str]) -> list[dict[str, Any]]:
    """Each query: name, what it asks, and how the store, the naive store and raw DuckDB ask it."""
    since = common.BENCH_END_TS - DAY
    has_latency = any(q["name"] == "latency_percentiles" for q in _catalogue())
    specs = [
        {
            "name": "newest_100",
            "label": "get_executions(limit=100)",
            "store": lambda: store.get_executions(limit=100),
            "naive": lambda: naive.get_executions(limit=100),
            "agree": _same_ids,
            "raw": ("SELECT * FROM executions ORDER BY started_at DESC LIMIT 100", {}),
        },
        {
            "name": "newest_100_agent",
            "label": f"get_executions(agent_name='{AGENT}', limit=100)",
            "store": lambda: store.get_executions(agent_name=AGENT, limit=100),
            "naive": lambda: naive.get_executions(agent_name=AGENT, limit=100),
            "agree": _same_ids,
            "raw": (
                "SELECT * FROM executions WHERE agent_name = $agent ORDER BY started_at DESC LIMIT 100",
                {"agent": AGENT},
            ),
        },
        {
            "name": "since_24h",
            "label": "get_executions(since=now-24h)",
            "store": lambda: store.get_executions(since=since),
            "naive": lambda: naive.get_executions(since=since),
            "agree": _same_ids,
            "raw": (
                "SELECT * FROM executions WHERE started_at >= $since ORDER BY started_at DESC LIMIT 100",
                {"since": since},
            ),
        },
        {
            "name": "since_24h_10k",
            "label": "get_executions(since=now-24h, limit=10000)",
            "store": lambda: store.get_executions(since=since, limit=10_000),
            "naive": lambda: naive.get_executions(since=since, limit=10_000),
            "agree": _same_ids,
            "raw": (
                "SELECT * FROM executions WHERE started_at >= $since ORDER BY started_at DESC LIMIT 10000",
                {"since": since},
            ),
        },
        {
            "name": "by_id",
            "label": "get_execution(full id)",
            "store": lambda: store.get_execution(ids["full"]),
            "naive": lambda: naive.get_execution(ids["full"]),
            "agree": _same_run,
            "raw": (
                "SELECT * FROM executions WHERE id = $id",
                {"id": ids["full"]},
                "SELECT * FROM events WHERE execution_id = $id ORDER BY seq",
            ),
        },
        {
            "name": "by_prefix",
            "label": f"get_execution('{ids['prefix']}')",
            "store": lambda: store.get_execution(ids["prefix"]),
            "naive": lambda: naive.get_execution(ids["prefix"]),
            "agree": _same_run,
            "raw": (
                "SELECT * FROM executions WHERE starts_with(id, $id) LIMIT 20",
                {"id": ids["prefix"]},
                "SELECT * FROM events WHERE starts_with(execution_id, $id) ORDER BY seq",
            ),
        },
        {
            "name": "summary",
            "label": "get_summary_stats()",
            "store": lambda: store.get_summary_stats(),
            "naive": lambda: naive.get_summary_stats(),
            "agree": _same_summary,
            "raw": ("@summary_stats", {}),
            "heavy": True,
        },
        {
            "name": "cost_by_agent",
            "label": "cost_by_agent()",
            "store": lambda: store.cost_by_agent(),
            "naive": lambda: naive.cost_by_agent(),
            "agree": lambda s, n: _same_groups(s.to_dicts(), n, "agent_name"),
            "raw": ("@cost_by_agent", {}),
            "heavy": True,
        },
        {
            "name": "cost_by_date",
            "label": "cost_by_date()",
            "store": lambda: store.cost_by_date(),
            "naive": lambda: naive.cost_by_date(),
            "agree": lambda s, n: _same_groups(
                [dict(r, date=r["date"].isoformat()) for r in s.to_dicts()], n, "date"
            ),
            "raw": ("@cost_by_date", {}),
            "heavy": True,
        },
    ]
    if has_latency:
        specs.append(
            {
                "name": "p50_p95_by_agent",
                "label": "run('latency_percentiles')",
                "store": lambda: store.run("latency_percentiles").rows(),
                "naive": lambda: naive.duration_percentiles(),
                "agree": _same_percentiles,
                "raw": ("@latency_percentiles", {}),
                "heavy": True,
            }
        )
    return specs


def _same_ids(store_rows: list[dict], naive_rows: list[dict]) -> bool:
    return [r["id"] for r in store_rows] == [r["id"] for r in naive_rows]


def _same_run(store_run: dict | None, naive_run: dict | None) -> bool:
    if store_run is None or naive_run is None:
        return False
    return store_run["id"] == naive_run["id"] and len(store_run["events"]) == len(
        naive_run["events"]
    )


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-9)


def _same_summary(s: dict, n: dict) -> bool:
    return (
        s["total_executions"] == n["total_executions"]
        and s["failed"] == n["failed"]
        and s["llm_calls"] == n["llm_calls"]
        and s["total_tokens"] == n["total_tokens"]
        and _close(s["total_cost"], n["total_cost"])
        and _close(s["avg_duration"], n["avg_duration"])
    )


def _same_groups(rows: list[dict], naive: dict[str, dict], key: str) -> bool:
    if {r[key] for r in rows} != set(naive):
        return False
    return all(
        r["calls"] == naive[r[key]]["calls"]
        and r["tokens"] == naive[r[key]]["tokens"]
        and _close(r["cost"], naive[r[key]]["cost"])
        for r in rows
    )


def _same_percentiles(rows: list[dict], naive: dict[str, tuple[float, float]]) -> bool:
    if {r["agent_name"] for r in rows} != set(naive):
        return False
    return all(
        _close(r["p50"], naive[r["agent_name"]][0]) and _close(r["p95"], naive[r["agent_name"]][1])
        for r in rows
    )


def _catalogue() -> list[dict[str, Any]]:
    from kagura.observability.store.engine import catalogue

    return catalogue()


class Raw:
    """Plain DuckDB over the lake's listed Parquet files: the limit the store is measured against."""

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

    def run(self, spec: tuple) -> Any:
        """Run one raw query (and its follow-up, if any) and fetch every row."""
        from kagura.observability.store.engine import load_sql, param_names

        text, params = spec[0], spec[1]
        if text.startswith("@"):
            text = load_sql(text[1:])
        bound = {name: params.get(name) for name in param_names(text)}
        rows = self.con.execute(text, bound or None).fetchall()
        for extra in spec[2:]:
            rows += self.con.execute(
                extra, {name: params.get(name) for name in param_names(extra)}
            ).fetchall()
        return rows

    def close(self) -> None:
        self.con.close()


_FIRST_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
t0 = time.perf_counter()
import common, bench_queries
from kagura.observability.eventstore import EventStore
t1 = time.perf_counter()
store = EventStore({db!r})
t2 = time.perf_counter()
spec = [s for s in bench_queries.query_specs(store, None, {ids!r}) if s["name"] == {name!r}][0]
spec["store"]()
t3 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1000, "open_ms": (t2 - t1) * 1000, "first_ms": (t3 - t2) * 1000}}))
"""


def first_in_fresh_process(db: Path, ids: dict[str, str], name: str) -> dict[str, float]:
    """The first call of one query in a new process: open the store, ask once (ms)."""
    script = _FIRST_SCRIPT.format(bench=str(Path(__file__).parent), db=str(db), ids=ids, name=name)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=common.ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"first-query process failed for {name}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pick_ids(store: Any) -> dict[str, str]:
    """A full id from the middle of the data and a 20-character prefix of it (unique)."""
    segments = sorted(store.segments(), key=lambda s: s.min_started_at)
    import pyarrow.parquet as pq

    middle = segments[len(segments) // 2]
    ids = pq.read_table(store.lake / middle.executions_path, columns=["id"]).column("id")
    full = ids[len(ids) // 2].as_py()
    return {"full": full, "prefix": full[:20]}


def run_size(n: int, naive_max: int, log=print) -> dict[str, Any]:
    """Every query at `n` executions; naive figures only when n <= naive_max."""
    from naive import NaiveStore

    from kagura.observability.eventstore import EventStore

    db, build = common.build_lake(n, log=log)
    naive = None
    naive_bytes = None
    if n <= naive_max:
        naive_db = common.build_naive(n, log=log)
        naive = NaiveStore(naive_db)
        naive_bytes = naive_db.stat().st_size
    store = EventStore(db, auto_compact=False)
    ids = pick_ids(store)
    raw = Raw(store.lake, store.segments())
    results: dict[str, Any] = {
        "n": n,
        "build": build,
        "lake_bytes": sum(seg.bytes for seg in store.segments()),
        "lake_files": 2 * len(store.segments()),
        "naive_bytes": naive_bytes,
        "queries": {},
    }
    for spec in query_specs(store, naive, ids):
        name = spec["name"]
        began = time.perf_counter()
        row: dict[str, Any] = {"label": spec["label"]}
        row["store"] = common.measure(spec["store"], repeat=15)
        row["store_fresh"] = first_in_fresh_process(db, ids, name)
        raw_first = Raw(store.lake, store.segments())
        t0 = time.perf_counter()
        raw_first.run(spec["raw"])
        first = (time.perf_counter() - t0) * 1000
        raw_first.close()
        row["raw"] = common.measure(lambda spec=spec: raw.run(spec["raw"]), repeat=15)
        row["raw"]["fresh_ms"] = first
        if naive is not None:
            heavy = spec.get("heavy", False)
            # The naive store's full scans take seconds to minutes and have no
            # warm state to build: one call stands for both figures.
            answer: dict[str, Any] = {}

            def ask(spec=spec, answer=answer):
                answer["naive"] = spec["naive"]()

            row["naive"] = common.measure(ask, repeat=0 if heavy else 15)
            # The same question, the same answer (checked outside the timings).
            try:
                row["agree"] = bool(spec["agree"](spec["store"](), answer["naive"]))
            except Exception as exc:  # a broken comparison is reported, not fatal
                row["agree"] = False
                row["agree_error"] = repr(exc)
        results["queries"][name] = row
        log(
            f"  {common.size_label(n)} {name}: store {row['store']['warm_ms']:.2f} ms, raw {row['raw']['warm_ms']:.2f} ms"
            + (
                f", naive {row['naive']['warm_ms']:.2f} ms, same answer: {row['agree']}"
                if "naive" in row
                else ""
            )
            + f" ({time.perf_counter() - began:.0f} s)"
        )
    if naive is not None:
        results["queries"]["newest_100_agent"]["naive_composite"] = composite_index_lookup(naive_db)
    raw.close()
    store.close()
    return results


def composite_index_lookup(db: Path) -> dict[str, Any]:
    """The naive store's newest-100-of-one-agent with an (agent_name, started_at) index added.

    Kagura's store had one index per column, and SQLite answers from the
    agent_name index, then sorts every run of that agent; a composite index
    reads just the 100 rows. Measured here for reference, then dropped again.
    """
    import sqlite3

    from naive import NaiveStore

    con = sqlite3.connect(db)
    try:
        con.execute("CREATE INDEX bench_agent_started ON executions (agent_name, started_at)")
        con.commit()
        naive = NaiveStore(db)
        return common.measure(lambda: naive.get_executions(agent_name=AGENT, limit=100), repeat=15)
    finally:
        con.execute("DROP INDEX IF EXISTS bench_agent_started")
        con.commit()
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--naive-max", type=int, default=1_000_000)
    args = parser.parse_args()
    out = {}
    for n in (int(s) for s in args.sizes.split(",")):
        out[n] = run_size(n, args.naive_max)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
