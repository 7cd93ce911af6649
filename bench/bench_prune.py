"""What a wiping prune costs: EventStore.prune against the naive store and the raw limit.

On a copy of the benchmark lake (90 days), prune the runs older than 60 days
before its end, at noon UTC, so whole segments go and one is split. The store:
`prune_plan()` then `prune()` (segments rewritten, old files removed, SQLite
vacuumed and its WAL emptied). The naive store (bench/naive.py, one row per
run with JSON events): `DELETE ... WHERE started_at < ?` then `VACUUM`, the same
wipe. The limit: unlink the files of whole days and rewrite the split one with
pyarrow, nothing else (no manifest, no tail, no vacuum).
Run: python bench/bench_prune.py [--sizes 100000,1000000] [--naive-max 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import common

DAY = 86400.0


def cutoff_of() -> float:
    """Noon UTC, 60 days before the data's end."""
    return (common.BENCH_END_TS - 60 * DAY) // DAY * DAY + DAY / 2


def run_size(n: int, naive_max: int, log=print) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from kagura.observability.eventstore import EventStore

    db, _ = common.build_lake(n, log=log)
    cutoff = cutoff_of()
    out: dict[str, Any] = {"n": n, "cutoff": cutoff}
    with tempfile.TemporaryDirectory(dir=common.OUT) as tmp:
        # The store.
        copy = Path(tmp) / "store"
        shutil.copytree(db.parent, copy)
        store = EventStore(copy / db.name, auto_compact=False)
        start = time.perf_counter()
        plan = store.prune_plan(cutoff)
        out["plan_ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        result = store.prune(cutoff)
        out["prune_ms"] = (time.perf_counter() - start) * 1000
        out["deleted"] = result["deleted"]
        out["planned"] = plan["runs"]
        store.close()
        # The limit: the same files, only unlinked or rewritten.
        raw = Path(tmp) / "raw"
        shutil.copytree(db.parent, raw)
        lake = raw / db.with_suffix("").name
        segments = EventStore(raw / db.name, auto_compact=False).segments()
        start = time.perf_counter()
        raw_deleted = 0
        for seg in segments:
            if seg.min_started_at >= cutoff:
                continue
            if seg.max_started_at < cutoff:
                (lake / seg.executions_path).unlink()
                (lake / seg.events_path).unlink()
                raw_deleted += seg.executions
                continue
            executions = pq.read_table(lake / seg.executions_path)
            keep = pc.greater_equal(executions.column("started_at"), cutoff)
            kept = executions.filter(keep)
            events = pq.read_table(lake / seg.events_path)
            kept_events = events.filter(
                pc.is_in(events.column("execution_id"), value_set=kept.column("id"))
            )
            pq.write_table(kept, lake / seg.executions_path, compression="zstd")
            pq.write_table(kept_events, lake / seg.events_path, compression="zstd")
            raw_deleted += executions.num_rows - kept.num_rows
        out["raw_ms"] = (time.perf_counter() - start) * 1000
        out["raw_deleted"] = raw_deleted
        # The naive store.
        if n <= naive_max:
            naive_db = common.build_naive(n, log=log)
            naive_copy = Path(tmp) / "naive.db"
            shutil.copy(naive_db, naive_copy)
            con = sqlite3.connect(naive_copy, isolation_level=None)
            start = time.perf_counter()
            gone = con.execute("DELETE FROM executions WHERE started_at < ?", (cutoff,)).rowcount
            con.execute("VACUUM")
            out["naive_ms"] = (time.perf_counter() - start) * 1000
            out["naive_deleted"] = gone
            con.close()
    log(
        f"  {common.size_label(n)}: prune {out['prune_ms']:.0f} ms (plan {out['plan_ms']:.0f} ms), "
        f"raw {out['raw_ms']:.0f} ms"
        + (f", naive {out['naive_ms']:.0f} ms" if "naive_ms" in out else "")
        + f"; deleted {out['deleted']:,} (planned {out['planned']:,}, raw {out['raw_deleted']:,})"
    )
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| size | runs deleted | plan (ms) | prune with wipe (ms) | naive DELETE + VACUUM (ms) | raw unlink + rewrite (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        naive = f"{r['naive_ms']:.0f}" if "naive_ms" in r else "-"
        lines.append(
            f"| {common.size_label(r['n'])} | {r['deleted']:,} | {r['plan_ms']:.0f} | "
            f"{r['prune_ms']:.0f} | {naive} | {r['raw_ms']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--naive-max", type=int, default=100_000)
    args = parser.parse_args()
    results = [run_size(int(s), args.naive_max) for s in args.sizes.split(",")]
    print(json.dumps(common.machine(), indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
