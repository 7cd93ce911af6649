"""Four writer processes, one compactor and two CLI readers on one store at once.

Writers record runs (some first as running, completed later) and log them as
ground truth; the compactor moves and merges segments all the while; two readers
run `kagura monitor stats --json` in a loop. Nothing may fail, the readers'
totals may never go down, and at the end the store holds exactly what the
writers logged, once each.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time

from kagura.observability import EventStore
from kagura.observability.store.rows import execution_row, new_execution_id

from . import harness
from .conftest import LONG, cli, figures, wait_until

SECONDS = 60.0 if LONG else 15.0
WRITERS = 4
READERS = 2


# Regression: wal.check_store_file() used to open and close the database file for each
# new connection; closing any descriptor of a file drops all of the process's POSIX locks
# on it (https://www.sqlite.org/howtocorrupt.html section 2.2), so another process's
# close deleted the WAL under this one and its later commits were lost.
READER = (
    "import sqlite3, sys\n"
    "con = sqlite3.connect(sys.argv[1])\n"
    "con.execute('SELECT count(*) FROM executions').fetchone()\n"
    "con.close()\n"
)


def test_commits_survive_another_process_closing_the_database(db):
    store = EventStore(db, auto_compact=False)
    started = time.time() - 60
    for _ in range(5):
        store.append(
            execution_row(
                id=new_execution_id(at=started),
                agent_name="a",
                started_at=started,
                status="completed",
            )
        )
        # Someone runs `kagura monitor stats` (any reader that opens and closes the file).
        subprocess.run([sys.executable, "-c", READER, str(db)], check=True)
    store.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM executions").fetchone()[0] == 5
    finally:
        con.close()


def test_a_second_thread_keeps_the_first_threads_lock(db):
    store = EventStore(db, auto_compact=False)
    store.tail_size()  # the main thread's connection
    worker = threading.Thread(target=store.tail_size)  # a second thread's connection
    worker.start()
    worker.join()
    # While this process has the store open, no other process may take it exclusively.
    probe = (
        "import sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
        "try:\n"
        "    con.execute('PRAGMA locking_mode = EXCLUSIVE')\n"
        "    con.execute('BEGIN EXCLUSIVE'); con.execute('SELECT 1 FROM executions').fetchall()\n"
        "    print('exclusive')\n"
        "except sqlite3.OperationalError:\n"
        "    print('shared')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=True
    )
    store.close()
    assert result.stdout.strip() == "shared"


def test_listing_while_another_process_compacts_misses_no_run(db):
    import random

    rng = random.Random(1)
    now = time.time()
    truth = harness.Truth()
    lister = EventStore(db, auto_compact=False)
    for day in (3, 2):
        runs = [
            harness.new_run(rng, now - day * 86400, now - day * 86400 + 3600) for _ in range(10)
        ]
        lister.append_many([r.rows() for r in runs])
        lister.compact()
        truth.apply(runs)
    runs = [harness.new_run(rng, now - 3600, now - 60) for _ in range(10)]
    lister.append_many([r.rows() for r in runs])
    truth.apply(runs)
    compactor = EventStore(db, auto_compact=False)
    # Place the other compaction exactly between the listing's first and second round.
    first_round = lister._run_sql
    rounds = []

    def run_sql(*args, **kwargs):
        result = first_round(*args, **kwargs)
        rounds.append(1)
        if len(rounds) == 1:
            assert compactor.compact()["executions"] == 10
        return result

    lister._run_sql = run_sql
    listed = lister.get_executions(limit=1000)
    assert len(rounds) >= 2, "the listing finished in one round; the race was not placed"
    assert sorted(e["id"] for e in listed) == sorted(truth.runs)
    lister.close()
    compactor.close()


def reader_loop(db, stop: threading.Event, seen: list, errors: list) -> None:
    """Run the CLI's stats until told to stop; keep every answer, and every failure."""
    while not stop.is_set():
        result = cli("monitor", "stats", "--json", "--db", str(db))
        if result.returncode != 0 or result.stderr.strip():
            errors.append((result.returncode, result.stderr))
            continue
        stats = json.loads(result.stdout)
        seen.append((stats["total_executions"], stats["total_tokens"], stats["total_cost"]))


def test_writers_compactor_and_readers_together(db, tmp_path, children):
    logs = [tmp_path / f"writer-{i}.jsonl" for i in range(WRITERS)]
    writers = [
        children(
            harness.command(
                "writer", "--db", db, "--log", log, "--seed", 100 + i,
                "--seconds", SECONDS, "--max-batch", 8, "--pause", 0.01,
            )
        )
        for i, log in enumerate(logs)
    ]  # fmt: skip
    for writer in writers:
        assert writer.stdout.readline() == b"ready\n", writer.stderr.read().decode()
    compactor = children(
        harness.command("compactor", "--db", db, "--seconds", SECONDS, "--pause", 0.25)
    )
    assert compactor.stdout.readline() == b"ready\n", compactor.stderr.read().decode()
    wait_until(db.exists)

    stop = threading.Event()
    seen: list[list] = [[] for _ in range(READERS)]
    errors: list = []
    readers = [
        threading.Thread(target=reader_loop, args=(db, stop, seen[i], errors))
        for i in range(READERS)
    ]
    for reader in readers:
        reader.start()
    for writer in writers:
        writer.wait(timeout=SECONDS + 120)
    compactor.wait(timeout=SECONDS + 120)
    stop.set()
    for reader in readers:
        reader.join()

    failures = []
    for proc in [*writers, compactor]:
        err = proc.stderr.read().decode()
        if proc.returncode != 0 or err.strip():
            failures.append((proc.args[2], proc.returncode, err[-2000:]))
    assert not failures, failures
    assert not errors, errors[:3]
    compacted = json.loads(compactor.stdout.read().decode().strip().splitlines()[-1])

    assert sum(len(answers) for answers in seen) >= 4, "the readers barely ran"
    for answers in seen:
        for before, after in zip(answers, answers[1:], strict=False):
            assert after[0] >= before[0] and after[1] >= before[1] and after[2] >= before[2], (
                f"a reader's totals went down: {before} -> {after}"
            )

    truth = harness.Truth()
    for log in logs:
        found, _, _ = harness.read_store(db)
        assert truth.absorb_log(log, found) == "none"
    harness.assert_exact(db, truth)
    final = cli("monitor", "stats", "--json", "--db", str(db))
    stats = json.loads(final.stdout)
    want = truth.totals()
    assert stats["total_executions"] == want["executions"]
    assert stats["total_tokens"] == want["tokens"]
    assert stats["total_cost"] * 1024 == want["cost_units"]
    assert compacted["moved"] > 0 and compacted["merged"] > 0, compacted

    figures(
        "concurrency",
        seconds=SECONDS,
        writers=WRITERS,
        runs=len(truth.runs),
        reader_queries=sum(len(a) for a in seen),
        compaction_rounds=compacted["rounds"],
        moved=compacted["moved"],
        merged=compacted["merged"],
        errors=0,
    )
