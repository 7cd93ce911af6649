"""Compaction that reads the tail through ADBC in a child process: the same lake as the sqlite3 path."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store import arrow_reader

pytest.importorskip("adbc_driver_sqlite")

T0 = 1_750_000_000.0


def _fill(store: EventStore) -> None:
    """1,500 settled runs whose first 1,200 leave error, tags and metrics NULL (ADBC guesses
    types from its first rows), then runs that set them; plus two runs still running."""
    pairs = [run("alpha", T0 + i, costs=(0.001, None)) for i in range(1_200)]
    for i in range(300):
        row, events = run("beta", T0 + 2_000 + i, status="failed", error=f"boom {i}", tools=2)
        row["tags"] = json.dumps({"k": i})
        row["metrics"] = json.dumps({"score": i / 7})
        pairs.append((row, events))
    pairs += [run("gamma", T0 + 5_000 + i, status="running") for i in range(2)]
    store.append_many(pairs)


def _lake(store: EventStore) -> tuple[pa.Table, pa.Table]:
    """Every listed row, read back with plain pyarrow, in a fixed order."""
    segs = store.segments()
    executions = pa.concat_tables(
        [pq.read_table(store.lake / s.executions_path) for s in segs]
    ).sort_by("id")
    events = pa.concat_tables([pq.read_table(store.lake / s.events_path) for s in segs]).sort_by(
        [("execution_id", "ascending"), ("seq", "ascending")]
    )
    return executions, events


def test_adbc_and_sqlite3_paths_write_the_same_lake(tmp_path):
    lakes = {}
    for way in (True, False):
        with EventStore(tmp_path / f"{way}.db", auto_compact=False) as store:
            _fill(store)
            report = store._compactor.compact(arrow_reader=way)
            assert report["reader"] == ("adbc" if way else "sqlite3")
            assert (report["executions"], report["events"]) == (1_500, 1_200 * 2 + 300 * 3)
            assert store.tail_size()["running"] == 2
            lakes[way] = _lake(store)
    (ex_a, ev_a), (ex_b, ev_b) = lakes[True], lakes[False]
    # Ids differ between the two stores: compare everything else, row by row.
    assert ex_a.drop_columns(["id", "trace_id"]).equals(ex_b.drop_columns(["id", "trace_id"]))
    assert ev_a.drop_columns(["execution_id"]).equals(ev_b.drop_columns(["execution_id"]))
    beta = ex_a.filter(pa.compute.equal(ex_a.column("agent_name"), "beta"))
    assert beta.column("error").to_pylist()[0].startswith("boom ")
    assert beta.column("metrics").null_count == 0


def test_a_failing_reader_falls_back_to_sqlite3(tmp_path):
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        _fill(store)
        broken = arrow_reader.ArrowReader(tmp_path / "no-such-folder" / "t.db")
        try:
            assert store._compactor._seal()  # the live generation sealed, then moved
            moved, events, _ = store._compactor._compact_batch(10_000, broken)
        finally:
            broken.close()
        assert broken.failed
        assert (moved, events) == (1_500, 1_200 * 2 + 300 * 3)
        assert store.get_summary_stats()["total_executions"] == 1_502


def test_the_reader_process_loads_no_other_sqlite(tmp_path):
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        _fill(store)
    reader = arrow_reader.ArrowReader(tmp_path / "t.db")
    try:
        (counted,) = reader.read_tables(
            [
                (
                    "SELECT count(*) AS n FROM executions",
                    pa.schema([("n", pa.int64())]),
                    [("n", "int")],
                )
            ]
        )
        assert counted.column("n").to_pylist() == [1_502]
        # What the child has mapped: ADBC's driver, and neither Python's sqlite3 module nor
        # the system SQLite library it links.
        maps = Path(f"/proc/{reader.proc.pid}/maps").read_text()
    finally:
        reader.close()
    assert "adbc_driver_sqlite" in maps
    assert "_sqlite3" not in maps and "libsqlite3" not in maps


class _Staggered(arrow_reader.ArrowReader):
    """Two children, the second asked only after `between` ran: the runs and the events
    read in two snapshots with a write between them, deterministically."""

    def __init__(self, db, between):
        super().__init__(db, processes=2)
        self.between = between

    def iter_tables(self, queries, apart=None):
        first, second = self.children
        first.ask(queries[:apart])
        for _, schema, _ in queries[:apart]:
            yield first.answer(schema)
        self.between()
        second.ask(queries[apart:])
        for _, schema, _ in queries[apart:]:
            yield second.answer(schema)


def test_a_run_written_again_between_the_two_readers_snapshots_moves_once(tmp_path):
    pairs = [run("a", T0 + i) for i in range(20)]
    again = run("a", T0 + 5, costs=(0.004, 0.004, 0.004))
    rid = pairs[5][0]["id"]
    again = (dict(again[0], id=rid, trace_id=rid), [dict(e, execution_id=rid) for e in again[1]])
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        store.append_many(pairs)
        written = []

        def write_again():
            if not written:  # once: the runs were read with it, the events without it
                store.append(*again)
                written.append(True)

        comp = store._compactor
        comp._reader = lambda wanted: _Staggered(store._wal.path, write_again)
        report = comp.compact()
        assert report["reader"] == "adbc" and written
        # The commit saw the runs' table lose a row since it was read: read again, and the
        # run written again stays in the live generation, whole, for the next compaction.
        assert report["executions"] == 19 and report["events"] == 19
        assert store.tail_size() == {"running": 0, "settled": 1, "events": 3}
        report = comp.compact()
        assert report["executions"] == 1 and report["events"] == 3
        stats = store.get_summary_stats()
        assert (stats["total_executions"], stats["llm_calls"]) == (20, 22)
        assert stats["total_cost"] == pytest.approx(19 * 0.001 + 0.012)
        assert store.get_execution(rid)["metrics"]["total_cost"] == pytest.approx(0.012)
        assert store.tail_size() == {"running": 0, "settled": 0, "events": 0}


def test_a_reader_child_that_dies_falls_back_to_sqlite3(tmp_path):
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        _fill(store)
        reader = arrow_reader.ArrowReader(tmp_path / "t.db", processes=2)
        try:
            reader.children[1].proc.kill()  # the events' reader dies before it answers
            reader.children[1].proc.wait()
            assert store._compactor._seal()
            moved, events, _ = store._compactor._compact_batch(10_000, reader)
        finally:
            reader.close()
        assert reader.failed
        assert (moved, events) == (1_500, 1_200 * 2 + 300 * 3)
        assert store.get_summary_stats()["total_executions"] == 1_502
        assert store.tail_size() == {"running": 2, "settled": 0, "events": 2}


def test_when_one_reader_fails_the_other_is_ended_at_once(tmp_path):
    from kagura.observability.store.rows import EVENT_COLUMNS, EVENT_NAMES
    from kagura.observability.store.tail import EVENTS_SCHEMA

    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        _fill(store)
    reader = arrow_reader.ArrowReader(tmp_path / "t.db", processes=2)
    try:
        # The first reader fails on its query; the second has all the events to send.
        small = ("SELECT n FROM no_such_table", pa.schema([("n", pa.int64())]), [("n", "int")])
        events = (
            f"SELECT {', '.join(EVENT_NAMES)} FROM events",
            EVENTS_SCHEMA,
            list(EVENT_COLUMNS),
        )
        with pytest.raises(arrow_reader.ReaderFailed):
            list(reader.iter_tables([small, events], apart=1))
    finally:
        reader.close()
    assert reader.failed
    # Its answer (2,702 events: more than a pipe holds) is no longer wanted: it was killed
    # when the first failed, not left to fill its pipe until close() gives up after 10 s.
    assert reader.children[1].proc.returncode == -signal.SIGKILL


def _stop_second_reader(monkeypatch, pids: list[int]) -> None:
    """Every ArrowReader made from now on has its second child stopped (SIGSTOP) at once,
    as a debugger, a cgroup freezer or a swap storm would."""
    import os

    made = arrow_reader.ArrowReader.__init__

    def init(self, db, processes=1):
        made(self, db, processes)
        pids.extend(c.proc.pid for c in self.children)
        os.kill(self.children[-1].proc.pid, signal.SIGSTOP)

    monkeypatch.setattr(arrow_reader.ArrowReader, "__init__", init)


def test_a_stuck_reader_is_killed_and_the_tail_read_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(arrow_reader, "STALL_SECONDS", 1.0)
    pids: list[int] = []
    _stop_second_reader(monkeypatch, pids)
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        store.append_many([run("a", T0 + i, costs=(0.001, 0.002), tools=1) for i in range(3_000)])
        report = store._compactor.compact(arrow_reader=True)
        assert report["executions"] == 3_000  # moved all the same, through sqlite3
        assert report["reader"] == "sqlite3"
        assert store.tail_size() == {"running": 0, "settled": 0, "events": 0}
        assert sum(s.executions for s in store.segments()) == 3_000
        assert sum(s.events for s in store.segments()) == 9_000
    assert len(pids) == 2


def test_a_stuck_reader_never_keeps_the_agents_process_from_exiting(tmp_path):
    """Auto-compaction runs in a daemon thread: with its reader stopped, the process still
    exits when the program ends (it used to wait for the reader forever)."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from store_rows import run
        from kagura.observability.eventstore import EventStore
        from kagura.observability.store import arrow_reader

        made = arrow_reader.ArrowReader.__init__
        def init(self, db, processes=1):
            made(self, db, processes)
            print(" ".join(str(c.proc.pid) for c in self.children), flush=True)
            os.kill(self.children[-1].proc.pid, signal.SIGSTOP)
        arrow_reader.ArrowReader.__init__ = init
        store = EventStore({str(tmp_path / "t.db")!r}, auto_compact=False)
        store.append_many([run("a", {T0} + i, costs=(0.001,), tools=1) for i in range(3000)])
        threading.Thread(target=store._compactor.compact, kwargs={{"arrow_reader": True}},
                         daemon=True).start()
        time.sleep(2)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    pids = [int(p) for p in done.stdout.split()]
    for pid in pids:  # the stopped child outlives its parent: end it
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert done.returncode == 0, done.stderr
    assert len(pids) == 2


def test_no_reader_is_started_for_runs_still_running(tmp_path, monkeypatch):
    from kagura.observability.store import compaction

    monkeypatch.setattr(compaction, "ARROW_READER_FROM", 100)
    started: list[int] = []
    made = arrow_reader.ArrowReader.__init__

    def init(self, db, processes=1):
        started.append(processes)
        made(self, db, processes)

    monkeypatch.setattr(arrow_reader.ArrowReader, "__init__", init)
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        # 150 runs in the tail, 120 of them still running: 30 settled, below the 100.
        store.append_many(
            [run("a", T0 + i, status="running") for i in range(120)]
            + [run("a", T0 + 200 + i) for i in range(30)]
        )
        report = store.compact()
        assert (report["executions"], report["reader"], started) == (30, "sqlite3", [])
        store.append_many([run("a", T0 + 300 + i) for i in range(100)])  # 100 settled
        report = store.compact()
        assert (report["executions"], report["reader"], len(started)) == (100, "adbc", 1)
