"""Compaction: settled executions (each with 3 events) moved from the SQLite tail to Parquet.

Bulk: a tail of N executions from the last day, moved by one compact() reading
the tail through ADBC in two child processes, in a new process each time (CPU
seconds: that process and its readers), `--rounds` times; with `--before DIR`
(another checkout of the code, e.g. `git archive <commit> | tar -x -C DIR`) that
code's compaction moves a copy of the same tail in turns with this one's. Then
the same tail moved reading it with sqlite3 (the path below ARROW_READER_FROM
and without the driver). Compaction seals the tail's live generation and
empties its tables whole (store/migrations.py m006). Steady: the tail reaches
the auto-compaction threshold (config.COMPACT_TAIL_ROWS) and is moved, five
times. Raw: the least work that does the same move (read both tables with
sqlite3, build Arrow columns, write one zstd Parquet file each, delete the
rows), with no manifest, partitions or fsync: the limit; raw ADBC does the same
with the read through ADBC (in one child process, read then write). The naive
store has no compaction.
Run: python bench/bench_compaction.py [--n 1000000] [--before DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import common

TMP = common.OUT / "tmp_compaction"


def _rows(n: int, seed: int) -> list[tuple[dict, list[dict]]]:
    pairs: list[tuple[dict, list[dict]]] = []
    for executions, events in common.arrow_chunks(n, seed=seed, days=1, end=time.time() - 60):
        pairs.extend(common.pairs_of(executions, events))
    return pairs


def _tail(n: int) -> Path:
    """A store file whose tail holds `n` settled executions (3 events each), built once."""
    from kagura.observability.eventstore import EventStore

    path = TMP / "tail.db"
    data = _rows(n, 21)
    with EventStore(path, auto_compact=False) as store:
        for at in range(0, n, 10_000):
            store.append_many(data[at : at + 10_000])
    return path


_BULK = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from kagura.observability.eventstore import EventStore


def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


with EventStore(Path(sys.argv[2]), auto_compact=False) as store:
    before = cpu()
    start = time.perf_counter()
    report = store._compactor.compact(arrow_reader=sys.argv[3] == "adbc")
    seconds = time.perf_counter() - start
    after = cpu()
    left = store.tail_size()
    # Listed segments only: files replaced by a merge wait a grace period before deletion.
    lake = sum(seg.bytes for seg in store.segments())
    counted = store.get_summary_stats()["total_executions"]
import kagura
print(json.dumps({
    "code": str(Path(kagura.__file__).parent.parent),
    "reader": report["reader"],
    "seconds": seconds,
    "parent_cpu": after[0] - before[0],
    "readers_cpu": after[1] - before[1],
    "moved": report["executions"],
    "events": report["events"],
    "segments": report["segments"],
    "left_in_tail": left["settled"],
    "counted_back": counted,
    "lake_bytes": lake,
}))
"""


def bulk(n: int, source: Path, arrow_reader: bool, code: Path | None = None) -> dict[str, Any]:
    """One compact() of a copy of the `n`-execution tail, reading it with ADBC (True) or sqlite3,
    in a new process that imports the store from `code` (a checkout; this one by default).

    CPU seconds are that process's and its children's (the ADBC readers)."""
    import subprocess

    db = TMP / f"bulk_{'adbc' if arrow_reader else 'sqlite3'}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(db.parent / f"{db.stem}.lake", ignore_errors=True)
    shutil.copy(source, db)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _BULK,
            str(code or common.ROOT),
            str(db),
            "adbc" if arrow_reader else "sqlite3",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    out = json.loads(child.stdout.strip().splitlines()[-1])
    cpu = out["parent_cpu"] + out["readers_cpu"]
    out.update(
        n=n,
        cpu_seconds=cpu,
        per_second=out["moved"] / out["seconds"],
        per_cpu_second=out["moved"] / cpu,
        load=os.getloadavg()[0],
    )
    return out


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time, with the medians of its figures and the range of runs/s."""
    runs = sorted(runs, key=lambda r: r["seconds"])
    out = dict(runs[len(runs) // 2])
    for key in (
        "seconds",
        "cpu_seconds",
        "parent_cpu",
        "readers_cpu",
        "per_second",
        "per_cpu_second",
        "load",
    ):
        out[key] = statistics.median(r[key] for r in runs)
    out["per_second_range"] = [
        min(r["per_second"] for r in runs),
        max(r["per_second"] for r in runs),
    ]
    out["rounds"] = len(runs)
    return out


_RAW_ADBC = """
import json, sys, time
import adbc_driver_sqlite.dbapi as dbapi
import pyarrow.parquet as pq
start = time.perf_counter()
con = dbapi.connect(sys.argv[1], autocommit=True)
cur = con.cursor()
cur.execute("BEGIN")
tables = {}
for name in ("executions", "events"):
    cur.execute(f"SELECT * FROM {name}_0")
    tables[name] = cur.fetch_arrow_table()
cur.execute("COMMIT")
read = time.perf_counter() - start
for name, table in tables.items():
    pq.write_table(table, f"{sys.argv[2]}_{name}.parquet", compression="zstd", compression_level=1)
print(json.dumps({"read": read, "write": time.perf_counter() - start - read}))
"""


def raw_adbc(n: int, source: Path) -> dict[str, Any]:
    """The limit with ADBC: read both tables into Arrow in a child (no other SQLite there),
    write one zstd Parquet file each, then empty the tables with sqlite3 here."""
    import subprocess

    db = TMP / "raw_adbc.db"
    shutil.copy(source, db)
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-I", "-c", _RAW_ADBC, str(db), str(TMP / "raw_adbc")],
        capture_output=True,
        text=True,
        check=True,
    )
    moved = time.perf_counter() - start
    parts = json.loads(child.stdout)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    # The tail's tables of generation 0, where a fresh store's writes go (whole tables:
    # SQLite frees their pages).
    con.execute("DELETE FROM events_0")
    con.execute("DELETE FROM executions_0")
    con.execute("COMMIT")
    con.close()
    seconds = time.perf_counter() - start
    return {
        "n": n,
        "seconds": seconds,
        "per_second": n / seconds,
        "start_seconds": moved - parts["read"] - parts["write"],
        "read_seconds": parts["read"],
        "write_seconds": parts["write"],
        "delete_seconds": seconds - moved,
    }


def steady(rounds: int = 5) -> dict[str, Any]:
    """Fill the tail to the auto-compaction threshold and compact, `rounds` times."""
    from kagura.config import COMPACT_TAIL_ROWS
    from kagura.observability.eventstore import EventStore

    per_round = []
    with EventStore(TMP / "steady.db", auto_compact=False) as store:
        for r in range(rounds):
            data = _rows(COMPACT_TAIL_ROWS, 40 + r)
            store.append_many(data)
            start = time.perf_counter()
            report = store.compact()
            per_round.append(report["executions"] / (time.perf_counter() - start))
    return {
        "batch": COMPACT_TAIL_ROWS,
        "rounds": rounds,
        "per_second": statistics.median(per_round),
    }


def raw(n: int) -> dict[str, Any]:
    """The same move without the store: sqlite3 -> Arrow -> one Parquet file per table -> DELETE."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bench_ingest import RAW_SCHEMA

    from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES
    from kagura.synthetic import fixtures

    db = TMP / "raw.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(
        RAW_SCHEMA.format(exec_cols=", ".join(EXECUTION_NAMES), event_cols=", ".join(EVENT_NAMES))
    )
    data = _rows(n, 21)
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        f"INSERT INTO executions VALUES ({', '.join('?' * len(EXECUTION_NAMES))})",
        [tuple(r[k] for k in EXECUTION_NAMES) for r, _ in data],
    )
    con.executemany(
        f"INSERT INTO events VALUES ({', '.join('?' * len(EVENT_NAMES))})",
        [tuple(e[k] for k in EVENT_NAMES) for _, evs in data for e in evs],
    )
    con.execute("COMMIT")
    del data
    exec_schema, event_schema = fixtures.arrow_schemas()
    start = time.perf_counter()
    tables = []
    con.execute("BEGIN")
    for table, names, schema in (
        ("executions", EXECUTION_NAMES, exec_schema),
        ("events", EVENT_NAMES, event_schema),
    ):
        rows = con.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall()
        columns = list(zip(*rows, strict=True))
        tables.append(
            pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                schema=schema,
            )
        )
    con.execute("COMMIT")
    read = time.perf_counter() - start
    for name, table in zip(("executions", "events"), tables, strict=True):
        pq.write_table(table, TMP / f"raw_{name}.parquet", compression="zstd")
    written = time.perf_counter() - start
    con.execute("BEGIN IMMEDIATE")
    con.execute("DELETE FROM events")
    con.execute("DELETE FROM executions")
    con.execute("COMMIT")
    seconds = time.perf_counter() - start
    con.close()
    return {
        "n": n,
        "seconds": seconds,
        "per_second": n / seconds,
        "read_seconds": read,
        "write_seconds": written - read,
        "delete_seconds": seconds - written,
        "bytes": sum((TMP / f"raw_{t}.parquet").stat().st_size for t in ("executions", "events")),
    }


def run(n: int, before: Path | None = None, rounds: int = 3, log=print) -> dict[str, Any]:
    """Every compaction figure; temporary stores are removed afterwards.

    `before`: a checkout of other code (e.g. `git archive <commit>` unpacked) whose
    compaction moves the same tail too, in turns with this code's, `rounds` times each.
    """
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    out: dict[str, Any] = {}
    try:
        source = _tail(n)
        ways: dict[str, list[dict[str, Any]]] = {"bulk": []}
        if before is not None:
            ways["bulk_before"] = []
        for _ in range(rounds):
            ways["bulk"].append(bulk(n, source, arrow_reader=True))
            if before is not None:
                ways["bulk_before"].append(bulk(n, source, arrow_reader=True, code=before))
        for name, runs in ways.items():
            out[name] = _median_of(runs)
            log(
                f"  compaction {name} {common.size_label(n)}: {out[name]['per_second']:,.0f}/s, "
                f"{out[name]['per_cpu_second']:,.0f} per CPU s"
            )
        out["bulk_sqlite3"] = bulk(n, source, arrow_reader=False)
        log(
            f"  compaction bulk {common.size_label(n)}, sqlite3 reader: "
            f"{out['bulk_sqlite3']['per_second']:,.0f}/s"
        )
        out["raw_adbc"] = raw_adbc(n, source)
        log(f"  compaction raw ADBC {common.size_label(n)}: {out['raw_adbc']['per_second']:,.0f}/s")
        out["load"] = os.getloadavg()[0]
        out["steady"] = steady()
        log(f"  compaction steady: {out['steady']['per_second']:,.0f}/s")
        out["raw"] = raw(n)
        log(f"  compaction raw {common.size_label(n)}: {out['raw']['per_second']:,.0f}/s")
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of the code to compare with (its compaction moves the same tail)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way (medians)")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.before, args.rounds), indent=2))


if __name__ == "__main__":
    main()
