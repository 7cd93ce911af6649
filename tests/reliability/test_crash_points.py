"""Kill the store at each named point of its protocols, deterministically.

A child runs the real operation (compaction with its merges, retention, an
append) and SIGKILLs itself when it reaches one point: a temporary Parquet file
written, one file of a pair renamed, both renamed but not committed, inside the
SQLite transaction before COMMIT, just after COMMIT. After the kill the store must
hold exactly the rows it held before (or, once the commit happened, exactly the
rows after), unlisted files must not be read, and the next open and compaction
must tidy them away.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kagura.observability import EventStore
from kagura.observability.store.compaction import lake_lock

from . import harness

DAY = 86400.0


def day_start(at: float) -> float:
    return at - at % DAY


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A store with 3 small segments on each of two dates, settled and running runs in the tail."""
    folder = tmp_path_factory.mktemp("seeded")
    db = folder / "telemetry.db"
    rng = random.Random(7)
    truth = harness.Truth()
    day_a = day_start(time.time()) - 3 * DAY
    day_b = day_a + DAY
    store = EventStore(db, auto_compact=False)

    def add(runs):
        store.append_many([r.rows() for r in runs])
        truth.apply(runs)

    for _ in range(3):
        add([harness.new_run(rng, day_a + 60, day_a + DAY - 60) for _ in range(15)])
        add([harness.new_run(rng, day_b + 60, day_b + DAY - 60) for _ in range(15)])
        store.compact()
    add([harness.new_run(rng, day_a + 60, day_a + DAY - 60) for _ in range(10)])
    add([harness.new_run(rng, day_b + 60, day_b + DAY - 60) for _ in range(10)])
    # Running runs of a live process (this one) stay in the tail through every compaction.
    add([harness.new_run(rng, day_b + 60, day_b + DAY - 60, "running") for _ in range(3)])
    assert len(store.segments()) == 6
    store.close()
    return db, truth, day_a + DAY / 2


def copy_store(db: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copyfile(db, dest / db.name)
    shutil.copytree(harness.lake_of(db), harness.lake_of(dest / db.name))
    return dest / db.name


def run_child(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def unlisted(db: Path) -> set[str]:
    listed, retired = harness.listed_files(db)
    return harness.lake_files(db) - listed - retired


def check_recovery(db: Path, truth: harness.Truth, point: str) -> None:
    """Exact content now, with leftovers unread; tidy after an open; tidy after a compaction."""
    harness.assert_exact(db, truth)
    with lake_lock(harness.lake_of(db)):
        store = EventStore(db, auto_compact=False)
        harness.assert_store_totals(store, truth)
        store.close()
    store = EventStore(db, auto_compact=False)  # the open removes what a crash left
    assert not unlisted(db), f"{point}: left after open: {sorted(unlisted(db))}"
    store.compact()
    store.close()
    # Retired files go once no reader can hold them: age them past the grace period.
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE retired_files SET retired_at = retired_at - 3600")
    con.close()
    store = EventStore(db, auto_compact=False)
    store.compact()
    harness.assert_store_totals(store, truth)
    store.close()
    harness.assert_exact(db, truth)
    listed, _ = harness.listed_files(db)
    assert harness.lake_files(db) == listed, f"{point}: files not listed remain"
    harness.assert_rollups_agree(db)
    tail = (
        sqlite3.connect(db)
        .execute("SELECT count(*) FROM executions WHERE status <> 'running'")
        .fetchone()[0]
    )
    assert tail == 0, f"{point}: {tail} settled runs still in the tail"


# (point, nth time it is reached, leftovers expected on disk right after the kill)
COMPACTION_POINTS = [
    # Sealing the live generation (the other one takes the running runs): before and
    # after its COMMIT. After it, the sealed rows are still the tail's until the commit
    # that lists their segments empties their tables (compact:in-txn / compact:committed).
    ("seal:in-txn", 1, False),
    ("seal:committed", 1, False),
    ("compact:tmp-written", 1, True),
    ("compact:first-renamed", 1, True),
    ("compact:first-renamed", 2, True),  # executions and events renamed, the rollup not yet
    ("compact:renamed-uncommitted", 1, True),
    ("compact:renamed-uncommitted", 2, True),
    ("compact:in-txn", 1, True),
    ("compact:committed", 1, False),
    ("merge:tmp-written", 1, True),
    ("merge:first-renamed", 1, True),
    ("merge:first-renamed", 2, True),
    ("merge:renamed-uncommitted", 1, True),
    ("merge:in-txn", 1, True),
    ("merge:committed", 1, False),
    ("merge:committed", 2, False),
]


def kill_all(seeded, tmp_path, cases, extra):
    """Copy the seeded store per case, run each child to its kill point (two at a time)."""
    db, truth, cutoff = seeded
    jobs = []
    for i, (point, nth, *_rest) in enumerate(cases):
        copy = copy_store(db, tmp_path / f"case{i}")
        argv = harness.command("op", "--db", copy, "--kill-at", point, "--nth", nth, *extra(copy))
        jobs.append((copy, argv))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run_child, [argv for _, argv in jobs]))
    return [(copy, result) for (copy, _), result in zip(jobs, results, strict=True)]


def test_compaction_and_merge_points(seeded, tmp_path):
    db, truth, _ = seeded
    done = kill_all(seeded, tmp_path, COMPACTION_POINTS, lambda copy: ["--op", "compact"])
    for (point, nth, leftovers), (copy, result) in zip(COMPACTION_POINTS, done, strict=True):
        label = f"{point}#{nth}"
        assert result.returncode == -signal.SIGKILL, f"{label} not reached: {result.stderr}"
        if leftovers:
            assert unlisted(copy), f"{label}: the kill left no unlisted file to ignore"
        if point.startswith("merge:committed"):
            _, retired = harness.listed_files(copy)
            assert retired, f"{label}: a merge retired no file"
        check_recovery(copy, truth, label)


# The same protocol with the tail read by the ADBC reader processes (store/arrow_reader.py).
ARROW_READER_POINTS = [
    ("seal:committed", 1, False),
    ("compact:tmp-written", 1, True),
    ("compact:first-renamed", 2, True),
    ("compact:renamed-uncommitted", 2, True),
    ("compact:in-txn", 1, True),
    ("compact:committed", 1, False),
]


def readers_of(db: Path) -> list[str]:
    """Reader processes (arrow_reader.py) still running on `db`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"arrow_reader.py") for a in argv) and str(db).encode() in argv:
            found.append(proc.name)
    return found


def test_compaction_points_with_the_arrow_readers(seeded, tmp_path):
    pytest.importorskip("adbc_driver_sqlite")
    db, truth, _ = seeded
    done = kill_all(
        seeded, tmp_path, ARROW_READER_POINTS, lambda copy: ["--op", "compact", "--arrow-reader"]
    )
    for (point, nth, leftovers), (copy, result) in zip(ARROW_READER_POINTS, done, strict=True):
        label = f"adbc {point}#{nth}"
        assert result.returncode == -signal.SIGKILL, f"{label} not reached: {result.stderr}"
        if leftovers:
            assert unlisted(copy), f"{label}: the kill left no unlisted file to ignore"
        # The readers see their input close with the killed process, and end.
        deadline = time.monotonic() + 10
        while readers_of(copy) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not readers_of(copy), f"{label}: reader processes outlived the compaction"
        check_recovery(copy, truth, label)
    # Not killed: the same compaction reads through the readers and moves every settled run.
    copy = copy_store(db, tmp_path / "whole")
    result = run_child(harness.command("op", "--db", copy, "--op", "compact", "--arrow-reader"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])["result"]
    assert report["reader"] == "adbc" and report["executions"] == 20, report
    check_recovery(copy, truth, "adbc, not killed")


RETENTION_POINTS = [
    ("retention:tmp-written", 1, "before"),
    ("retention:first-renamed", 1, "before"),
    ("retention:first-renamed", 2, "before"),
    ("retention:renamed-uncommitted", 1, "before"),
    ("retention:in-txn", 1, "before"),
    ("retention:committed", 1, "after"),
]


def test_retention_points(seeded, tmp_path):
    db, truth, cutoff = seeded
    done = kill_all(
        seeded, tmp_path, RETENTION_POINTS, lambda copy: ["--op", "prune", "--cutoff", cutoff]
    )
    after = harness.Truth()
    after.apply([r for r in truth.runs.values() if r.started_at >= cutoff])
    assert 0 < len(after.runs) < len(truth.runs)
    for (point, _nth, when), (copy, result) in zip(RETENTION_POINTS, done, strict=True):
        assert result.returncode == -signal.SIGKILL, f"{point} not reached: {result.stderr}"
        check_recovery(copy, truth if when == "before" else after, point)


@pytest.mark.parametrize("point", ["append:in-txn", "append:committed"])
def test_append_points(seeded, tmp_path, point):
    db, truth, _ = seeded
    copy = copy_store(db, tmp_path / "case")
    log = tmp_path / "truth.jsonl"
    result = run_child(
        harness.command(
            "op", "--db", copy, "--op", "append", "--log", log, "--max-batch", 7, "--kill-at", point
        )
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    mine = harness.Truth()
    mine.apply(truth.runs.values())
    found, _, _ = harness.read_store(copy)
    outcome = mine.absorb_log(log, found)
    # Killed before COMMIT: none of the batch; after: all of it (and never a part).
    assert outcome == ("out" if point == "append:in-txn" else "in")
    check_recovery(copy, mine, point)
