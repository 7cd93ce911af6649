"""Rollups: the planned analytics beside raw DuckDB scanning the same raw files, in one run.

Builds (or reuses) a lake of `--runs` synthetic runs with kagura.synthetic.lake
(3 events each, rollups written beside every segment), then times, warm, each
analytic as the store answers it (whole hours from rollups) against DuckDB
running the analytic's own scan SQL (sql/NAME.sql) directly over the same
Parquet files, and the store's scan (exact=True). Also: the newest 100 runs of
one agent, and bytes per run with and without the rollups.

    .venv/bin/python bench/bench_rollups.py --runs 10000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, dir_bytes, machine, measure, size_label  # noqa: E402

DAY = 86400.0
END = 1751241600.0  # 2025-06-30T00:00:00Z


def build(runs: int, days: float) -> Path:
    """The bench store of `runs` runs (cached under bench/out/data/rollups_<size>/)."""
    from kagura.synthetic.lake import write_runs

    folder = DATA / f"rollups_{size_label(runs)}"
    db = folder / "telemetry.db"
    done = folder / "done"
    if done.exists():
        return db
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    write_runs(db, runs, days, seed=0, end=END)
    print(f"built {runs:,} runs in {time.perf_counter() - start:.1f}s", flush=True)
    done.write_text("ok")
    return db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=90.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="time only the store's answers (at 100M a raw scan takes tens of seconds a query)",
    )
    args = parser.parse_args(argv)

    import duckdb

    from kagura.observability.eventstore import EventStore
    from kagura.observability.store.engine import load_sql

    db = build(args.runs, args.days)
    store = EventStore(db, auto_compact=False, read_only=True)
    segments = store.segments()
    lake = store.lake
    exec_files = [str(lake / s.executions_path) for s in segments]
    event_files = [str(lake / s.events_path) for s in segments]
    raw = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    raw.execute("SET TimeZone = 'UTC'")
    raw.execute("SET parquet_metadata_cache = true")
    listed = ", ".join(f"'{f}'" for f in exec_files)
    raw.execute(
        "CREATE VIEW executions AS SELECT * REPLACE (coalesce(trace_id, id) AS trace_id) "
        f"FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
    )
    listed = ", ".join(f"'{f}'" for f in event_files)
    raw.execute(
        f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
    )
    agent = store.agent_names()[0]
    now = END - 3600.5
    since = END - 30 * DAY + 1234.5  # windows with edges inside hours, as people ask

    def raw_sql(name: str, **params):
        from kagura.observability.store.engine import param_names

        text = load_sql(name)
        bound = {k: params.get(k) for k in param_names(text)}
        return lambda: raw.sql(text, params=bound).fetchall()

    cases = [
        ("summary", lambda **k: store.get_summary_stats(**k), {}, raw_sql("summary_stats")),
        (
            "summary, 30 days",
            lambda **k: store.get_summary_stats(since=since, **k),
            {},
            raw_sql("summary_stats", since=since),
        ),
        ("cost by agent", lambda **k: store.cost_by_agent(**k), {}, raw_sql("cost_by_agent")),
        ("cost by date", lambda **k: store.cost_by_date(**k), {}, raw_sql("cost_by_date")),
        (
            "cost by model",
            lambda **k: store.cost_by_model(**k),
            {},
            raw_sql("cost_by_model", per_day=False),
        ),
        (
            "latency per agent",
            lambda **k: store.latency_percentiles(**k),
            {},
            raw_sql("latency_percentiles", per_day=False),
        ),
        (
            "budget",
            lambda **k: store.budget_status(1.0, 30.0, now=now, **k),
            {},
            raw_sql(
                "budget_status", now=now, daily=1.0, monthly=30.0, days=7.0, since=now - 32 * DAY
            ),
        ),
        (
            "health",
            lambda **k: store.agent_health(now=now),
            {},
            raw_sql(
                "agent_health",
                now=now,
                since=now - 30 * DAY,
                last=20,
                degraded=0.2,
                unhealthy=0.5,
                silent_after=DAY,
                silent_factor=10.0,
                min_runs=5,
            ),
        ),
        (
            "regressions",
            lambda **k: store.regressions(now=now, **k),
            {},
            raw_sql(
                "regressions",
                since=now - 16 * DAY,
                split=now - 2 * DAY,
                until=now,
                min_runs=20,
                min_change=0.2,
                min_failure_change=0.05,
                alpha=0.01,
            ),
        ),
    ]
    info = machine()
    print(f"# rollups bench: {args.runs:,} runs over {args.days:g} days, {len(segments)} segments")
    print(f"# {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB, load {_load()}")
    print(f"{'query':34} {'store ms':>9} {'raw ms':>9} {'ratio':>7} {'exact ms':>9}")
    results = []
    for label, fn, _, raw_fn in cases:
        timed = measure(lambda fn=fn: fn(), repeat=args.repeat)
        planned = timed["warm_ms"]
        if args.store_only:
            results.append((label, planned, None, None))
            print(f"{label:34} {planned:9.1f}  (first call {timed['first_ms']:.1f} ms)")
            continue
        scanned = measure(raw_fn, repeat=max(1, args.repeat // 2))["warm_ms"]
        exact = measure(
            lambda fn=fn, label=label: _exactly(store, fn, label), repeat=max(1, args.repeat // 2)
        )["warm_ms"]
        results.append((label, planned, scanned, exact))
        print(f"{label:34} {planned:9.1f} {scanned:9.1f} {planned / scanned:7.3f} {exact:9.1f}")
    newest = measure(lambda: store.get_executions(agent, limit=100), repeat=args.repeat)["warm_ms"]
    print(f"{'newest 100 runs of ' + agent:34} {newest:9.1f}")
    cold = _new_process_stats(db)
    print(
        f"{'monitor stats, new process':34} {cold['median']:9.1f}  (first {cold['first']:.0f} ms, "
        f"which writes {LEVELS}, peak RSS {cold['first_rss_mb']:.0f} MB; "
        f"then peak RSS {cold['rss_mb']:.0f} MB)"
    )
    peaks = _new_process_memory(db, now)
    print(
        "peak RSS, each analytic alone in a new process (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        + f"; largest {max(peaks.values()):.0f}"
    )
    total = dir_bytes(lake)
    rollups = dir_bytes(lake / "rollups") if (lake / "rollups").is_dir() else 0
    print(
        f"lake {total / args.runs:.1f} bytes per run (rollups {rollups / args.runs:.2f}), "
        f"{total / 1e6:.0f} MB"
    )
    store.close()
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB (a run that built the lake counts the build)")
    return 0


def _exactly(store, fn, label: str):
    """The store's scan of the same analytic (health takes no `exact`: the store's flag)."""
    if "health" not in label:
        return fn(exact=True)
    store.exact = True
    try:
        return fn()
    finally:
        store.exact = False


LEVELS = "cache/rollup-levels.parquet"


def _child_env() -> dict[str, str]:
    """The environment of a new process as on a user's machine: Python caches compiled
    modules (pip compiles an installed package's; an editable install writes them at the
    first import). Some shells turn that off; the children write to the venv's pycache,
    as scripts/test.sh does, and so pay the compile once, not at every start."""
    import os

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(sys.prefix) / "pycache")
    return env


def _new_process_stats(db: Path, runs: int = 4) -> dict[str, float]:
    """`kagura monitor stats` as a new process: wall ms of the first run (no merged levels on
    disk yet) and the median of the next ones (which start from them), and the peak RSS."""
    import subprocess

    (db.with_suffix("") / LEVELS).unlink(missing_ok=True)
    walls, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        # Through /usr/bin/time: a forked child's own ru_maxrss counts the parent's pages it
        # held before exec (this bench's hundreds of MB), GNU time reports the command's.
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "kagura.cli"]
            + ["monitor", "stats", "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
            env=_child_env(),
        )
        walls.append((time.perf_counter() - start) * 1000)
        peaks.append(int(done.stderr.split()[-1]) / 1024)
    rest = sorted(walls[1:])
    return {
        "first": walls[0],
        "median": rest[len(rest) // 2],
        "first_rss_mb": peaks[0],
        "rss_mb": max(peaks[1:]),
    }


# Each analytic as a user's script calls it (the saved rollup levels on disk, as after any
# earlier command), one per process: its peak memory is the process's.
ALONE = {
    "summary": "store.get_summary_stats()",
    "cost by agent": "store.cost_by_agent()",
    "cost by date": "store.cost_by_date()",
    "cost by model": "store.cost_by_model()",
    "latency per agent": "store.latency_percentiles()",
    "budget": "store.budget_status(1.0, 30.0, now=NOW)",
    "health": "store.agent_health(now=NOW)",
    "regressions": "store.regressions(now=NOW)",
    "newest 100 runs": "store.get_executions(store.agent_names()[0], limit=100)",
}


def _new_process_memory(db: Path, now: float) -> dict[str, float]:
    """Peak RSS in MB of a new process that opens the store and runs one analytic, per analytic."""
    import subprocess

    peaks = {}
    for label, call in ALONE.items():
        code = (
            "from kagura.observability.eventstore import EventStore\n"
            f"NOW = {now!r}\n"
            f"store = EventStore({str(db)!r}, auto_compact=False, read_only=True)\n"
            f"{call}\n"
        )
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
            env=_child_env(),
        )
        peaks[label] = int(done.stderr.split()[-1]) / 1024
    return peaks


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
