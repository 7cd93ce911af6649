"""The synthetic generator: `kagura demo --synthetic --runs N --days D` into a fresh store.

Store: the real CLI in a subprocess (wall seconds, CPU seconds, peak memory of
the process, bytes per run, doctor's verdict). Limit: the same generator's
tables for a sample of runs written with plain `pq.write_table` (no manifest,
no fsync, no lock), extrapolated per run. Naive: `fixtures.generate` (one
Python dict per run and event) into the naive store, one commit per run, on a
small sample, extrapolated.
Run: python bench/bench_synthetic.py [--runs 10000000] [--days 30] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

TMP = common.OUT / "tmp_synthetic"


def store(runs: int, days: int, db: Path) -> dict[str, Any]:
    """The real CLI writing `runs` runs into `db`; then doctor over it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kagura.cli", "demo", "--synthetic", "--runs", str(runs)]
        + ["--days", str(days), "--db", str(db)],
        capture_output=True,
        text=True,
        env=dict(os.environ, KAGURA_HOME=str(db.parent)),
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    doctor = subprocess.run(
        [sys.executable, "-m", "kagura.cli", "monitor", "--db", str(db), "doctor", "--json"],
        capture_output=True,
        text=True,
    )
    report = json.loads(doctor.stdout)
    lake = report["lake"]
    return {
        "runs": lake["executions"],
        "events": lake["events"],
        "segments": lake["segments"],
        "seconds": seconds,
        "per_second": lake["executions"] / seconds,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,
        "bytes": lake["bytes"],
        "bytes_per_run": lake["bytes"] / max(lake["executions"], 1),
        "healthy": report["healthy"],
        "load": os.getloadavg()[0],
    }


def limit(sample: int, days: int) -> dict[str, Any]:
    """The generator's own tables for `sample` runs, written with plain pq.write_table."""
    import numpy as np
    import pyarrow.parquet as pq

    from kagura.synthetic import lake

    agents = lake._Agents(0)
    rng = np.random.default_rng(0)
    end = time.time()
    start = time.perf_counter()
    runs = 0
    for index, (_date, starts) in enumerate(
        lake._pieces(rng, sample, end - days * 86400, end, lake.CHUNK)
    ):
        executions, events = lake._build(agents, np.random.default_rng([0, index]), starts, end)
        pq.write_table(executions, TMP / "limit_executions.parquet", compression="zstd")
        pq.write_table(events, TMP / "limit_events.parquet", compression="zstd")
        runs += executions.num_rows
    seconds = time.perf_counter() - start
    return {"runs": runs, "seconds": seconds, "per_second": runs / seconds}


def naive(sample: int) -> dict[str, Any]:
    """fixtures.generate into the naive store, one commit per run."""
    from naive import NaiveStore

    from kagura.synthetic import fixtures

    store = NaiveStore(TMP / "naive.db")
    start = time.perf_counter()
    for row, events in fixtures.generate(sample, seed=0):
        store.save(row, events)
    seconds = time.perf_counter() - start
    return {"runs": sample, "seconds": seconds, "per_second": sample / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", type=Path, default=None, help="write the store here and keep it")
    args = parser.parse_args()
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    db = args.keep or TMP / "store" / "telemetry.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": common.machine()}
    try:
        out["store"] = store(args.runs, args.days, db)
        out["limit"] = limit(min(args.runs, 1_000_000), args.days)
        out["naive"] = naive(2_000)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    s, lim, nai = out["store"], out["limit"], out["naive"]
    print(json.dumps(out, indent=2))
    print(f"\n| | runs/s | {common.size_label(args.runs)} runs would take |")
    print("| --- | --- | --- |")
    for label, part in (("store (CLI)", s), ("limit (plain Parquet)", lim), ("naive", nai)):
        print(f"| {label} | {part['per_second']:,.0f} | {args.runs / part['per_second']:,.0f} s |")
    print(
        f"\nstore: {s['runs']:,} runs, {s['segments']} segments, {s['bytes_per_run']:.1f} bytes/run, "
        f"{s['seconds']:.1f} s wall, {s['cpu_seconds']:.1f} s CPU, peak {s['peak_rss_mb']:,.0f} MB, "
        f"doctor healthy: {s['healthy']}, load {s['load']:.1f}"
    )


if __name__ == "__main__":
    main()
