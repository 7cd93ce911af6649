"""The SQLite tail: migrations, refusing foreign files, appends, incremental snapshots."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from store_rows import run

from kagura.observability.errors import NotAStoreError, SchemaTooNewError
from kagura.observability.eventstore import EventStore
from kagura.observability.store import migrations
from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES
from kagura.observability.store.tail import APPLICATION_ID, SCHEMA_VERSION, Tail


def test_migrating_an_empty_database_gives_the_model_columns(tmp_path):
    path = tmp_path / "t.db"
    Tail(path).close()
    con = sqlite3.connect(path)
    exec_cols = [r[1] for r in con.execute("PRAGMA table_info(executions)")]
    event_cols = [r[1] for r in con.execute("PRAGMA table_info(events)")]
    assert exec_cols == ["rev", *EXECUTION_NAMES]
    assert event_cols == ["rev", *EVENT_NAMES]
    assert (
        con.execute("PRAGMA user_version").fetchone()[0]
        == SCHEMA_VERSION
        == len(migrations.MIGRATIONS)
    )
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "telemetry.db"
    path.write_bytes(b"my notes, not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(NotAStoreError, match=str(path)):
        EventStore(path)
    assert path.read_bytes() == before


def test_another_apps_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.execute("INSERT INTO users VALUES ('ann')")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(NotAStoreError, match="not a kagura telemetry store"):
        EventStore(path)
    assert path.read_bytes() == before


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "t.db"
    Tail(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(SchemaTooNewError, match="newer kagura"):
        EventStore(path)


def test_snapshots_follow_updates_and_event_replacement(tmp_path):
    w = Tail(tmp_path / "t.db")
    row, events = run("a", 100.0, costs=(0.1, 0.2))
    w.append_many([(dict(row, status="running", ended_at=None, duration=None), [])])
    first = w.snapshot()
    assert first.executions.column("status").to_pylist() == ["running"]
    assert first.events.num_rows == 0
    assert w.snapshot() is first  # nothing changed: the same snapshot
    w.append_many([(row, events)])
    second = w.snapshot()
    assert second.executions.column("status").to_pylist() == ["completed"]
    assert second.events.column("seq").to_pylist() == [0, 1]
    # Saved again with one event: the execution has exactly that one now.
    w.append_many([(row, events[:1])])
    third = w.snapshot()
    assert third.executions.num_rows == 1 and third.events.column("seq").to_pylist() == [0]
    # Saved again without events: its events stay.
    w.append_many([(row, [])])
    assert w.snapshot().events.num_rows == 1


def test_a_second_connection_sees_the_other_writers_rows(tmp_path):
    path = tmp_path / "t.db"
    reader = Tail(path)
    writer = Tail(path)
    assert reader.snapshot().executions.num_rows == 0
    writer.append_many([run("a", float(i)) for i in range(5)])
    assert reader.snapshot().executions.num_rows == 5
    writer.append_many([run("a", float(i)) for i in range(3)])
    assert reader.snapshot().executions.num_rows == 8


def test_threads_appending_at_once_lose_nothing(tmp_path):
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    errors = []

    def work(n):
        try:
            for i in range(150):
                store.append(*run(f"agent{n}", 1000.0 + i))
        except Exception as exc:  # pragma: no cover - the assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = store.get_summary_stats()
    assert stats["total_executions"] == 900 and stats["llm_calls"] == 900


def test_memory_store_keeps_everything_in_memory(tmp_path):
    store = EventStore(":memory:")
    store.append_many([run("a", 10.0 + i) for i in range(3)])
    assert store.path is None and store.lake is None
    assert store.get_summary_stats()["total_executions"] == 3
    assert store.compact()["executions"] == 0
    assert store.delete_old_executions(11.5) == 2
    assert [e["started_at"] for e in store.get_executions()] == [12.0]


def test_migrations_are_named_functions_numbered_in_order():
    from kagura.observability.store import migrations

    names = [m.__name__ for m in migrations.MIGRATIONS]
    assert names[:2] == ["m001_initial", "m002_rev"]
    for number, name in enumerate(names, start=1):
        assert name.startswith(f"m{number:03d}_"), name
    assert migrations.SCHEMA_VERSION == len(names)


def test_a_store_of_version_one_runs_only_the_later_migrations(tmp_path):
    from kagura.observability.store import migrations

    path = tmp_path / "t.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    migrations.m001_initial(con)
    con.execute("PRAGMA user_version = 1")
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("COMMIT")
    con.execute("BEGIN")
    assert migrations.upgrade(con, 1) == [m.__name__ for m in migrations.MIGRATIONS[1:]]
    con.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION}")
    con.execute("COMMIT")
    assert [r[1] for r in con.execute("PRAGMA table_info(executions)")][0] == "rev"
    assert con.execute("SELECT value FROM state WHERE key = 'generation'").fetchone() == (0,)
    con.close()
    Tail(path).close()  # opens it as a store of the current version
