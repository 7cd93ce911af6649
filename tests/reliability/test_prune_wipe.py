"""After prune, no byte of a deleted run remains in the store's files.

Every run carries a unique marker in its arguments and in its LLM call's
messages. The scan reads the raw bytes of every file under the store's folder
and, for Parquet files, their decoded rows too (zstd can hide a string from a
byte search). Markers of kept runs must still be found: the scan can see.
With a reader open in another process, the files it may hold wait, doctor
says so, and they go when it closes, or at the next open if it was killed.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.store.rows import event_row, execution_row, new_execution_id

from .conftest import cli

DAY = 86400.0

READER = r"""
import sys
from kagura.observability.eventstore import EventStore
store = EventStore(sys.argv[1])
store.get_summary_stats()
print("ready", flush=True)
sys.stdin.readline()
store.close()
print("closed", flush=True)
sys.stdin.readline()
"""


def _run(tag: str, at: float, label: str, i: int) -> tuple[dict, list[dict]]:
    row = execution_row(
        id=new_execution_id(at=at),
        agent_name="writer",
        started_at=at,
        ended_at=at + 1,
        duration=1.0,
        status="completed",
        kwargs={"prompt": f"{label}-{tag}-arg{i}"},
    )
    event = event_row(
        row["id"], 0, "llm_call", at, name="m", data={"messages": f"{label}-{tag}-msg{i}"}
    )
    return row, [event]


@pytest.fixture
def planted(db: Path) -> tuple[str, float]:
    """Old runs in whole lake segments, in a segment the cutoff splits, and in the tail; kept runs too."""
    tag = secrets.token_hex(8)
    now = time.time()
    cutoff = (now - 5 * DAY) // DAY * DAY + DAY / 2  # noon UTC, five days ago
    with EventStore(db, auto_compact=False) as store:
        store.append_many([_run(tag, cutoff - 3 * DAY + i, "OLD", i) for i in range(5)])
        store.append_many(
            [_run(tag, cutoff - 3600 + i, "OLD", 10 + i) for i in range(3)]
            + [_run(tag, cutoff + 3600 + i, "KEEP", i) for i in range(3)]
        )
        store.compact()
        store.append_many(
            [_run(tag, cutoff - 7200 + i, "OLD", 20 + i) for i in range(2)]
            + [_run(tag, now - 60, "KEEP", 10)]
        )
    return tag, cutoff


def scan(folder: Path, marker: str) -> list[str]:
    """Files under `folder` whose bytes (or decoded Parquet rows) hold `marker`."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:4] == b"PAR1":
            data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        if marker.encode() in data:
            found.append(str(path.relative_to(folder)))
    return found


def test_no_byte_of_a_deleted_run_remains(db, planted):
    tag, cutoff = planted
    folder = db.parent
    assert scan(folder, f"OLD-{tag}")  # the scan sees them before
    result = cli(
        "monitor", "prune", "--older-than", str(cutoff), "--yes", "--json", "--db", str(db)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["deleted"] == 10 and report["pending"] is None
    assert scan(folder, f"OLD-{tag}") == []
    kept = scan(folder, f"KEEP-{tag}")
    # Kept runs are still there: in the database (tail) and in the rewritten segment.
    assert any(p.endswith(".db") for p in kept), kept
    assert any(p.endswith(".parquet") for p in kept), kept
    with EventStore(db) as store:
        assert store.get_summary_stats()["total_executions"] == 4


def _reader(db: Path) -> subprocess.Popen:
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline() == "ready\n", reader.stderr.read()
    return reader


def test_with_a_reader_open_the_files_go_when_it_closes(db, planted):
    tag, cutoff = planted
    folder = db.parent
    reader = _reader(db)
    try:
        result = cli(
            "monitor", "prune", "--older-than", str(cutoff), "--yes", "--json", "--db", str(db)
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["deleted"] == 10
        waiting = report["pending"]["files"]
        assert len(waiting) == 6  # the three files of the whole segment and of the split one
        held = scan(folder, f"OLD-{tag}")
        assert held and all(p.endswith(".parquet") for p in held)  # the database is clean already
        doctor = json.loads(cli("monitor", "doctor", "--json", "--db", str(db)).stdout)
        pending = doctor["prune_pending"]
        assert pending["reader_pids"] == [reader.pid]
        assert sorted(pending["files"]) == sorted(waiting)
        assert any("wiped when" in w for w in doctor["warnings"])
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline() == "closed\n", reader.stderr.read()
        # Gone as soon as the last reader let go, while its process still runs.
        assert scan(folder, f"OLD-{tag}") == []
        doctor = json.loads(cli("monitor", "doctor", "--json", "--db", str(db)).stdout)
        assert doctor["prune_pending"] is None
    finally:
        reader.kill()
        reader.wait()


def test_a_killed_reader_leaves_the_wipe_to_the_next_open(db, planted):
    tag, cutoff = planted
    folder = db.parent
    reader = _reader(db)
    try:
        with EventStore(db) as store:
            result = store.prune(cutoff)
        assert result["deleted"] == 10 and len(result["pending"]["files"]) == 6
        assert scan(folder, f"OLD-{tag}")
    finally:
        reader.send_signal(signal.SIGKILL)
        reader.wait()
    assert scan(folder, f"OLD-{tag}")  # nobody let go cleanly
    EventStore(db).close()  # the next open finds no reader and finishes the wipe
    assert scan(folder, f"OLD-{tag}") == []
    assert scan(folder, f"KEEP-{tag}")


def test_prune_removes_quarantined_files_of_the_days_it_deletes(db, planted):
    """A damaged segment that doctor set aside in damaged/ holds deleted runs too: prune takes it."""
    from kagura.observability.store import doctor

    tag, cutoff = planted
    with EventStore(db, auto_compact=False) as store:
        oldest = store.segments()[0]
        assert oldest.max_started_at < cutoff // DAY * DAY  # a day wholly before the cutoff
        damaged = store.lake / oldest.events_path
        damaged.write_bytes(b"not parquet" * 10)
        repaired = doctor.repair(store)
        assert [a["segment"] for a in repaired["actions"] if a["action"] == "unlisted"] == [
            oldest.id
        ]
        quarantine = store.lake / doctor.DAMAGED
        set_aside = sorted(p for p in quarantine.rglob("*") if p.is_file())
        assert len(set_aside) >= 2  # its executions file (markers in it) and the damaged one
    folder = db.parent
    assert any(f"/{doctor.DAMAGED}/" in p for p in scan(folder, f"OLD-{tag}"))
    result = cli(
        "monitor", "prune", "--older-than", str(cutoff), "--yes", "--json", "--db", str(db)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["quarantined_removed"] == len(set_aside)
    assert scan(folder, f"OLD-{tag}") == []
    assert not quarantine.exists() or not any(quarantine.rglob("*"))


def test_clear_all_leaves_no_byte_of_any_run(db, planted):
    tag, _ = planted
    folder = db.parent
    assert scan(folder, f"KEEP-{tag}") and scan(folder, f"OLD-{tag}")
    with EventStore(db) as store:
        store.clear_all()
        assert store.get_summary_stats()["total_executions"] == 0
    assert scan(folder, f"KEEP-{tag}") == []
    assert scan(folder, f"OLD-{tag}") == []


def test_prune_and_clear_drop_the_merged_rollups_a_reader_saved(db, planted):
    """The rollup levels a reader keeps in the lake's cache/ summed the deleted runs too."""
    from kagura.observability.store.rollups import LEVELS_FILE

    _, cutoff = planted
    with EventStore(db) as store:
        before = store.get_summary_stats()["total_executions"]
        levels = store.lake / LEVELS_FILE
    assert before == 14
    if not levels.exists():
        pytest.skip("no planned query saved rollup levels for this store")
    with EventStore(db) as store:
        assert store.prune(cutoff)["deleted"] == 10
        assert not levels.exists()
        assert store.get_summary_stats()["total_executions"] == 4
    with EventStore(db) as store:  # a new reader, from whatever the lake holds now
        assert store.get_summary_stats()["total_executions"] == 4
        store.clear_all()
        assert not levels.exists()
        assert store.get_summary_stats()["total_executions"] == 0
