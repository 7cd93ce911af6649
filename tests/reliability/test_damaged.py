"""Damaged files: not SQLite, a cut SQLite file, bad Parquet listed or not, a lake file deleted.

Each case must end in a clear one-line error (or warning) that names the file,
with no other data lost; `kagura monitor doctor` reports the state and
`--repair` fixes what is safe (unlisted files removed; damaged listed files
moved to damaged/ and unlisted, their runs reported as lost).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kagura.observability import EventStore
from kagura.observability.errors import StoreError
from kagura.observability.store import doctor
from kagura.observability.store.compaction import lake_lock

from . import harness
from .conftest import assert_one_line_error, cli


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_BUILT: dict[int, tuple[Path, harness.Truth]] = {}


def build(db: Path, seed: int = 3) -> harness.Truth:
    """A store at `db` with four dates of runs: most in the lake (several segments), some in the tail.

    Built once per seed and copied, so that each test damages its own copy.
    """
    if seed not in _BUILT:
        import tempfile

        master = Path(tempfile.mkdtemp(prefix="kagura-damaged-")) / "telemetry.db"
        _BUILT[seed] = (master, _build(master, seed))
    master, truth = _BUILT[seed]
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(master, db)
    shutil.copytree(harness.lake_of(master), harness.lake_of(db))
    copy = harness.Truth()
    copy.apply(truth.runs.values())
    return copy


def _build(db: Path, seed: int) -> harness.Truth:
    rng = random.Random(seed)
    truth = harness.Truth()
    store = EventStore(db, auto_compact=False)
    now = harness.time.time()
    for day in range(4):
        for _ in range(2):
            runs = [
                harness.new_run(rng, now - (day + 2) * 86400, now - (day + 1) * 86400 - 60)
                for _ in range(12)
            ]
            store.append_many([r.rows() for r in runs])
            truth.apply(runs)
            store.compact()
    runs = [harness.new_run(rng, now - 3600, now - 60) for _ in range(9)]
    store.append_many([r.rows() for r in runs])
    truth.apply(runs)
    store.close()
    return truth


def without(truth: harness.Truth, ids: set[str]) -> harness.Truth:
    rest = harness.Truth()
    rest.apply([r for r in truth.runs.values() if r.id not in ids])
    return rest


def first_segment(db: Path):
    store = EventStore(db, auto_compact=False)
    seg = store.segments()[0]
    store.close()
    return seg


def segment_ids(db: Path, seg) -> set[str]:
    return set(
        pq.read_table(harness.lake_of(db) / seg.executions_path, columns=["id"])["id"].to_pylist()
    )


# --- the database file ------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"my notes, not a database\n" * 40)
    before = digest(db)
    with pytest.raises(StoreError) as error:
        EventStore(db)
    assert str(db) in str(error.value)
    for command in (["monitor", "stats"], ["monitor", "list"], ["monitor", "doctor"]):
        result = cli(*command, "--db", str(db))
        assert_one_line_error(result, str(db))
    assert digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_another_programs_sqlite_database_is_refused_untouched(db):
    import sqlite3

    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('keep me')")
    con.commit()
    con.close()
    before = digest(db)
    with pytest.raises(StoreError) as error:
        EventStore(db)
    assert str(db) in str(error.value)
    assert_one_line_error(cli("monitor", "stats", "--db", str(db)), str(db))
    assert digest(db) == before  # not even switched to WAL mode (header bytes 18-19)


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_cut_sqlite_file_is_refused_with_its_name(db, keep):
    build(db)
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep)])
    before = digest(db)
    with pytest.raises(StoreError) as error:
        store = EventStore(db, auto_compact=False)
        store.get_summary_stats()
    assert str(db) in str(error.value)
    result = cli("monitor", "stats", "--db", str(db))
    assert_one_line_error(result, str(db))
    assert digest(db) == before


# --- lake files nobody lists ---------------------------------------------------------


def test_unlisted_lake_files_are_never_read_and_are_removed(db):
    truth = build(db)
    lake = harness.lake_of(db)
    listed, _ = harness.listed_files(db)
    src = lake / sorted(listed)[0]
    planted = {
        src.with_name("copy.parquet"): src.read_bytes(),  # a valid copy: rows counted twice if read
        src.with_name("cut.parquet"): src.read_bytes()[:200],
        lake / "events" / "date=1999-01-01" / "junk.parquet": b"not parquet at all",
        lake / "executions" / "date=1999-01-01" / "x.parquet.tmp": b"PAR1",
    }
    for path, data in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    expected_orphans = sorted(p.relative_to(lake).as_posix() for p in planted)

    with lake_lock(lake):  # keep the open from tidying them away
        store = EventStore(db, auto_compact=False)
        harness.assert_store_totals(store, truth)
        store.close()
    store = EventStore(db, auto_compact=False)
    store.compact()  # the lock is free: the open and the compaction remove them
    assert not [p for p in planted if p.exists()]
    harness.assert_store_totals(store, truth)
    store.close()

    # The doctor sees the same files and removes exactly them.
    for path, data in planted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with lake_lock(lake):
        store = EventStore(db, auto_compact=False)
    report = doctor.check(store)
    assert report["orphans"] == expected_orphans
    assert report["healthy"] and not report["missing"] and not report["unreadable"]
    result = doctor.repair(store)
    removed = sorted(a["path"] for a in result["actions"] if a["action"] == "removed")
    assert removed == sorted(str(p) for p in planted)
    assert result["after"]["orphans"] == []
    harness.assert_store_totals(store, truth)
    store.close()
    harness.assert_exact(db, truth)


# --- listed lake files damaged or gone --------------------------------------------------


def damage(db: Path, how: str, kind: str):
    seg = first_segment(db)
    path = harness.lake_of(db) / (seg.executions_path if kind == "executions" else seg.events_path)
    if how == "deleted":
        path.unlink()
    elif how == "cut":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(random.Random(1).randbytes(path.stat().st_size))
    return seg, path


@pytest.mark.parametrize(
    "how, kind",
    [
        ("deleted", "executions"),
        ("deleted", "events"),
        ("cut", "executions"),
        ("garbage", "events"),
    ],
)
def test_doctor_reports_and_repairs_a_damaged_listed_file(db, how, kind):
    truth = build(db)
    lost_ids = segment_ids(db, first_segment(db))
    seg, path = damage(db, how, kind)
    others = {
        p: digest(p)
        for p in harness.lake_of(db).rglob("*.parquet")
        if p != path and p.name != path.name
    }

    store = EventStore(db, auto_compact=False)
    report = doctor.check(store)
    bad = report["missing"] if how == "deleted" else report["unreadable"]
    assert [item["path"] for item in bad] == [path.relative_to(store.lake).as_posix()]
    assert not report["healthy"] and len(report["problems"]) == 1
    assert str(path) in report["problems"][0]
    store.close()

    result = cli("monitor", "doctor", "--db", str(db), "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["problems"] == report["problems"]

    store = EventStore(db, auto_compact=False)
    repaired = doctor.repair(store)
    unlisted = [a for a in repaired["actions"] if a["action"] == "unlisted"]
    assert [(a["segment"], a["runs_lost"]) for a in unlisted] == [(seg.id, len(lost_ids))]
    assert repaired["after"]["healthy"]
    # The segment's files that are left move aside, its rollup with them.
    assert repaired["after"]["lake"]["quarantined"] == (2 if how == "deleted" else 3)
    store.close()

    # Every other run is still there, once, and no other lake file was touched.
    rest = without(truth, lost_ids)
    harness.assert_exact(db, rest)
    store = EventStore(db, auto_compact=False)
    harness.assert_store_totals(store, rest)
    store.compact()
    harness.assert_store_totals(store, rest)
    store.close()
    assert all(digest(p) == d for p, d in others.items() if p.exists())
    result = cli("monitor", "doctor", "--db", str(db))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("how", ["cut", "deleted"])
def test_a_damaged_listed_file_gives_a_one_line_error_naming_it(db, how):
    build(db)
    _, path = damage(db, how, "executions")
    # --exact reads every run (without it whole hours come from the segment's intact rollup).
    result = cli("monitor", "stats", "--exact", "--db", str(db))
    err = assert_one_line_error(result, str(path))
    assert "doctor" in err


def test_doctor_on_a_healthy_store_is_quiet_and_exact(db):
    truth = build(db)
    store = EventStore(db, auto_compact=False)
    report = doctor.check(store, deep=True)
    store.close()
    assert report["healthy"] and report["problems"] == [] and report["orphans"] == []
    lake = harness.lake_of(db)
    listed, _ = harness.listed_files(db)
    assert report["lake"]["files"] == len(listed)
    assert report["lake"]["bytes"] == sum((lake / rel).stat().st_size for rel in listed)
    in_lake = sum(
        pq.ParquetFile(lake / rel).metadata.num_rows
        for rel in listed
        if rel.startswith("executions/")
    )
    assert report["lake"]["executions"] == in_lake
    assert report["tail"]["settled"] + report["tail"]["running"] == len(truth.runs) - in_lake
    result = cli("monitor", "doctor", "--db", str(db))
    assert result.returncode == 0 and "healthy" in result.stdout, result.stdout + result.stderr


def test_doctor_tightens_loose_permissions(db):
    build(db)
    lake = harness.lake_of(db)
    loose = [db, next(lake.rglob("*.parquet")), lake / "executions"]
    for path in loose:
        path.chmod(0o755 if path.is_dir() else 0o644)
    store = EventStore(db, auto_compact=False)
    report = doctor.check(store)
    flagged = {item["path"] for item in report["permissions"]}
    assert {str(p) for p in loose} <= flagged
    doctor.repair(store)
    store.close()
    for path in loose:
        assert path.stat().st_mode & 0o077 == 0, path
    shutil.rmtree(lake / "damaged", ignore_errors=True)


def test_doctor_repair_through_the_command_line(db):
    truth = build(db)
    lake = harness.lake_of(db)
    stray = lake / "executions" / "date=2000-01-01" / "left-by-a-crash.parquet.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1 half written")
    lost = segment_ids(db, first_segment(db))
    seg, path = damage(db, "deleted", "executions")
    checked = cli("monitor", "doctor", "--db", str(db), "--json")
    assert checked.returncode == 1, checked.stderr
    assert json.loads(checked.stdout)["missing"][0]["segment"] == seg.id
    assert not stray.exists()  # opening the store already removed the unlisted file
    repaired = cli("monitor", "doctor", "--repair", "--db", str(db))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"unlisted segment {seg.id}" in repaired.stdout
    assert f"{len(lost)} runs lost" in repaired.stdout
    assert cli("monitor", "doctor", "--db", str(db)).returncode == 0
    harness.assert_exact(db, without(truth, lost))
