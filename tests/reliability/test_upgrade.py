"""Upgrades: a store written by schema 1 opens, upgrades and keeps every run; a newer one is refused.

The fixtures `data/fixtures/store_v1/` and `store_v5/` were written by the schema-1
and schema-5 stores (tests/reliability/make_store_fixture.py) with 305 runs, 225 of them
in nine lake segments; `expected.json` holds what each must contain, computed from the
generated runs, not read back. The test opens a copy (opening upgrades in place): from
schema 5 that is m006, the tail split into two generations of tables behind views.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from kagura.observability import EventStore
from kagura.observability.errors import SchemaTooNewError
from kagura.observability.store.tail import SCHEMA_VERSION

from . import harness
from .conftest import assert_one_line_error, cli

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"


@pytest.fixture(params=[1, 5])
def old_store(tmp_path, request) -> tuple[Path, dict]:
    fixture = FIXTURES / f"store_v{request.param}"
    copy = tmp_path / fixture.name
    shutil.copytree(fixture, copy)
    return copy / "telemetry.db", json.loads((fixture / "expected.json").read_text())


def user_version(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def check_content(store: EventStore, db: Path, expected: dict) -> None:
    """Every run of the fixture, once, with its status, tokens, cost and events."""
    runs = expected["runs"]
    found, dupes, counts = harness.read_store(db)
    assert not dupes and counts == {"orphan_events": 0, "duplicate_events": 0}
    want = {
        run_id: (r["status"], r["total_tokens"], round((r["total_cost"] or 0) * 1024), r["events"])
        for run_id, r in runs.items()
    }
    assert found == want, harness.describe_difference(found, want)
    stats = store.get_summary_stats()
    assert stats["total_executions"] == expected["executions"]
    assert stats["total_tokens"] == expected["total_tokens"]
    assert stats["total_cost"] == pytest.approx(expected["total_cost"], abs=1e-9)
    by_agent = {r["agent_name"]: r["calls"] for r in store.cost_by_agent().to_dicts()}
    want_agents: dict[str, int] = {}
    for r in runs.values():
        want_agents[r["agent_name"]] = want_agents.get(r["agent_name"], 0) + 1
    assert by_agent == want_agents
    some = sorted(runs)[::37]
    for run_id in some:
        got = store.get_execution(run_id)
        assert got["agent_name"] == runs[run_id]["agent_name"]
        assert len(got["events"]) == runs[run_id]["events"]


@pytest.mark.parametrize("version", [1, 5])
def test_the_fixtures_are_stores_of_their_schema(version):
    fixture = FIXTURES / f"store_v{version}"
    assert user_version(fixture / "telemetry.db") == version
    assert not (fixture / "telemetry.db-wal").exists()


def test_an_old_store_opens_upgrades_and_keeps_every_run(old_store):
    db, expected = old_store
    assert expected["schema_version"] in (1, 5)
    store = EventStore(db, auto_compact=False)
    assert user_version(db) == SCHEMA_VERSION
    check_content(store, db, expected)
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    views = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    # Every tail row is in generation 0 (live), none in 1; the old names are views now.
    assert {"executions_0", "executions_1", "events_0", "events_1"} <= tables
    assert {"executions", "events"} <= views
    assert (
        con.execute("SELECT count(*) FROM executions_0").fetchone()[0]
        == (expected["tail_executions"])
    )
    assert con.execute("SELECT count(*) FROM executions_1").fetchone()[0] == 0
    con.close()
    # The upgraded store keeps working: new runs, compaction (with merges), queries.
    report = store.compact()
    assert report["executions"] == expected["tail_executions"]
    assert report["merged"] > 0
    check_content(store, db, expected)
    store.close()
    store = EventStore(db, auto_compact=False)  # and opens again as it is
    check_content(store, db, expected)
    store.close()


def test_a_store_from_a_newer_kagura_is_refused_and_left_alone(db):
    store = EventStore(db, auto_compact=False)
    store.close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNewError) as error:
        EventStore(db)
    message = str(error.value)
    assert str(db) in message and "newer" in message and "upgrade" in message
    result = cli("monitor", "stats", "--db", str(db))
    assert_one_line_error(result, str(db), "upgrade")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert user_version(db) == SCHEMA_VERSION + 1
