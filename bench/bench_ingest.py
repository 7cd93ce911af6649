"""Ingest: executions (each with 3 events) appended from 1 process and from 4 at once.

The store (EventStore.append, one transaction per execution, as the recorder
writes) beside the naive store (a connection and a rollback-journal commit per
execution) and raw SQLite (one WAL connection, one transaction per execution,
no Python layer above it: the limit). After each run the rows are counted
back: 0 errors and 0 lost rows are part of the result.
Run: python bench/bench_ingest.py [--n 100000] [--naive-n 4000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import common

TMP = common.OUT / "tmp_ingest"


def rows(n: int, seed: int) -> list[tuple[dict, list[dict]]]:
    """`n` executions with 3 events each, from the last 10 minutes.

    Recent, as a recorder's rows are: rows older than the tail's age limit
    would make the store start a compaction every few hundred appends.
    """
    pairs: list[tuple[dict, list[dict]]] = []
    for executions, events in common.arrow_chunks(n, seed=seed, days=600 / 86400, end=time.time()):
        pairs.extend(common.pairs_of(executions, events))
    return pairs


# --- the three writers ---------------------------------------------------------------


class StoreWriter:
    """EventStore.append per execution (what the recorder does when a run ends)."""

    def __init__(self, db: Path):
        from kagura.observability.eventstore import EventStore

        self.store = EventStore(db)

    def write(self, row: dict, events: list[dict]) -> None:
        self.store.append(row, events)

    def close(self) -> None:
        self.store.close()


class NaiveWriter:
    """bench/naive.py: a new connection and a commit per execution."""

    def __init__(self, db: Path):
        from naive import NaiveStore

        self.store = NaiveStore(db)

    def write(self, row: dict, events: list[dict]) -> None:
        self.store.save(row, events)

    def close(self) -> None:
        pass


RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions ({exec_cols}, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS executions_started_at ON executions (started_at);
CREATE TABLE IF NOT EXISTS events ({event_cols}, PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;
"""


class RawWriter:
    """Raw SQLite, WAL, synchronous=NORMAL, one long-lived connection: the limit."""

    def __init__(self, db: Path):
        from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES

        self.exec_names, self.event_names = EXECUTION_NAMES, EVENT_NAMES
        self.con = sqlite3.connect(db, isolation_level=None, timeout=30)
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA synchronous = NORMAL")
        self.con.execute("PRAGMA busy_timeout = 30000")
        self.con.execute("BEGIN IMMEDIATE")
        self.con.executescript(
            RAW_SCHEMA.format(
                exec_cols=", ".join(EXECUTION_NAMES), event_cols=", ".join(EVENT_NAMES)
            )
        )
        self.exec_sql = (
            f"INSERT OR REPLACE INTO executions VALUES ({', '.join('?' * len(EXECUTION_NAMES))})"
        )
        self.event_sql = (
            f"INSERT OR REPLACE INTO events VALUES ({', '.join('?' * len(EVENT_NAMES))})"
        )

    def write(self, row: dict, events: list[dict]) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        con.execute(self.exec_sql, tuple(row[k] for k in self.exec_names))
        con.executemany(self.event_sql, [tuple(e[k] for k in self.event_names) for e in events])
        con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


WRITERS = {"store": StoreWriter, "naive": NaiveWriter, "raw": RawWriter}


def count_rows(kind: str, db: Path) -> tuple[int, int]:
    """(executions, events) held by the db of writer `kind`, counted back independently."""
    if kind == "store":
        from kagura.observability.eventstore import EventStore

        with EventStore(db, auto_compact=False) as store:
            executions = store.get_summary_stats()["total_executions"]
            events = store.events_frame().height
        return executions, events
    con = sqlite3.connect(db)
    try:
        if kind == "naive":
            n, blobs = con.execute(
                "SELECT count(*), sum(json_array_length(events)) FROM executions"
            ).fetchone()
            return n, blobs or 0
        return (
            con.execute("SELECT count(*) FROM executions").fetchone()[0],
            con.execute("SELECT count(*) FROM events").fetchone()[0],
        )
    finally:
        con.close()


def _init(kind: str, db: Path) -> None:
    WRITERS[kind](db).close()  # create the schema once, before writers race


def one_process(kind: str, n: int, seed: int = 1) -> dict[str, Any]:
    """Append `n` executions from this process; rate, per-call latency, and the count back."""
    db = TMP / f"{kind}_1p.db"
    _clean(db)
    data = rows(n, seed)
    _init(kind, db)
    writer = WRITERS[kind](db)
    latencies = []
    errors = 0
    start = time.perf_counter()
    for row, events in data:
        t0 = time.perf_counter()
        try:
            writer.write(row, events)
        except sqlite3.Error:
            errors += 1
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    writer.close()  # the store joins a compaction it started
    total = time.perf_counter() - start
    executions, events = count_rows(kind, db)
    latencies.sort()
    return {
        "n": n,
        "seconds": seconds,
        "seconds_with_close": total,
        "per_second": n / seconds,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "errors": errors,
        "lost": n - executions,
        "lost_events": 3 * n - events,
        "bytes": _db_bytes(db),
    }


def _worker(kind: str, db: str, n: int, seed: int, barrier: Any, out: Any) -> None:
    data = rows(n, seed)
    writer = WRITERS[kind](Path(db))
    barrier.wait()
    start = time.time()
    errors = 0
    first_error = None
    for row, events in data:
        try:
            writer.write(row, events)
        except sqlite3.Error as exc:
            errors += 1
            first_error = first_error or str(exc)
    end = time.time()
    writer.close()
    out.put(
        {
            "seed": seed,
            "start": start,
            "end": end,
            "closed": time.time(),
            "errors": errors,
            "first_error": first_error,
        }
    )


def processes(kind: str, n: int, procs: int = 4) -> dict[str, Any]:
    """`procs` processes append n/procs executions each, all at once, into one database."""
    db = TMP / f"{kind}_{procs}p.db"
    _clean(db)
    _init(kind, db)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    each = n // procs
    workers = [
        ctx.Process(target=_worker, args=(kind, str(db), each, 1000 + i, barrier, out))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=1800) for _ in workers]
    for w in workers:
        w.join()
    start = min(r["start"] for r in results)
    end = max(r["end"] for r in results)
    executions, events = count_rows(kind, db)
    errors = sum(r["errors"] for r in results)
    return {
        "n": each * procs,
        "processes": procs,
        "seconds": end - start,
        "per_second": each * procs / (end - start),
        "errors": errors,
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        # Rows that a call reported as written but that are not there.
        "lost": each * procs - errors - executions,
        "lost_events": 3 * (each * procs - errors) - events,
        "exit_codes": [w.exitcode for w in workers],
    }


def tail_bytes(n: int) -> dict[str, Any]:
    """Bytes per execution (with 3 events) in the SQLite tail, after a checkpoint."""
    from kagura.observability.eventstore import EventStore

    db = TMP / "tail.db"
    _clean(db)
    data = rows(n, 7)
    with EventStore(db, auto_compact=False) as store:
        start = time.perf_counter()
        for at in range(0, n, 1000):
            store.append_many(data[at : at + 1000])
        seconds = time.perf_counter() - start
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {"n": n, "bytes": db.stat().st_size, "append_many_1000_per_second": n / seconds}


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def _clean(db: Path) -> None:
    TMP.mkdir(parents=True, exist_ok=True)
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    lake = db.with_suffix("")
    if lake.is_dir():
        shutil.rmtree(lake)


def run(n: int, naive_n: int, log=print) -> dict[str, Any]:
    """Every ingest figure; temporary databases are removed afterwards."""
    out: dict[str, Any] = {}
    try:
        for kind, count in (("store", n), ("raw", n), ("naive", naive_n)):
            out[f"{kind}_1p"] = one_process(kind, count)
            log(f"  ingest {kind}, 1 process: {out[f'{kind}_1p']['per_second']:,.0f}/s")
        for kind, count in (("store", n), ("raw", n), ("naive", naive_n)):
            out[f"{kind}_4p"] = processes(kind, count)
            r = out[f"{kind}_4p"]
            log(
                f"  ingest {kind}, 4 processes: {r['per_second']:,.0f}/s, {r['errors']} errors, {r['lost']} lost"
            )
        out["tail"] = tail_bytes(min(n, 100_000))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--naive-n", type=int, default=4_000)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.naive_n), indent=2))


if __name__ == "__main__":
    main()
