"""Compaction into the Parquet lake: what moves, file layout, orphans, merges, retention."""

from __future__ import annotations

import os
import stat
import time

import pyarrow.parquet as pq
import pytest
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store import compaction

DAY = 86400.0
T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "telemetry.db", auto_compact=False)
    yield s
    s.close()


def totals(store):
    s = store.get_summary_stats()
    return s["total_executions"], s["llm_calls"], round(s["total_cost"], 9), s["total_tokens"]


def test_settled_runs_move_running_ones_stay(store):
    pairs = [run("a", T0 + i) for i in range(10)]
    running = run("a", T0 + 100)
    running_row = dict(
        running[0],
        status="running",
        ended_at=None,
        duration=None,
        total_cost=None,
        total_tokens=0,
        prompt_tokens=0,
        completion_tokens=0,
        llm_calls=0,
    )
    store.append_many(pairs)
    store.append(running_row)
    before = totals(store)
    report = store.compact()
    assert report["executions"] == 10 and report["events"] == 10 and report["segments"] == 1
    assert store.tail_size() == {"running": 1, "settled": 0, "events": 0}
    assert totals(store) == before == (11, 10, 0.01, 1200)
    # It finishes later and is still counted once.
    store.append(*running)
    store.compact()
    assert totals(store) == (11, 11, 0.011, 1320)
    assert store.tail_size()["settled"] == 0


def test_segments_are_per_date_sorted_and_private(store):
    # Appended newest first, over three UTC days.
    starts = [T0 + 2 * DAY + 50, T0 + 2 * DAY + 10, T0 + DAY, T0 + 30, T0 + 20, T0 + 10]
    store.append_many([run("a", t) for t in starts])
    store.compact()
    segments = store.segments()
    assert [s.date for s in segments] == ["2025-06-15", "2025-06-16", "2025-06-17"]
    assert [s.executions for s in segments] == [3, 1, 2]
    first = pq.read_table(store.lake / segments[0].executions_path)
    assert first.column("started_at").to_pylist() == [T0 + 10, T0 + 20, T0 + 30]
    assert segments[0].executions_path.startswith("executions/date=2025-06-15/")
    for seg in segments:
        for rel in (seg.executions_path, seg.events_path):
            mode = stat.S_IMODE(os.stat(store.lake / rel).st_mode)
            assert mode == 0o600, (rel, oct(mode))
    assert stat.S_IMODE(os.stat(store.lake).st_mode) == 0o700


def test_files_the_manifest_does_not_list_are_never_read_and_are_removed(store):
    store.append_many([run("a", T0 + i) for i in range(5)])
    store.compact()
    before = totals(store)
    # What a crash between the rename and the commit leaves: a complete segment, unlisted.
    more = [run("a", T0 + 50 + i) for i in range(7)]
    from kagura.synthetic.fixtures import pairs_to_arrow

    executions, events = pairs_to_arrow(more)
    orphan = compaction.write_segment(store.lake, "2025-06-15", executions, events)
    (store.lake / "executions/date=2025-06-15/half-written.parquet.tmp").write_bytes(
        b"PAR1 garbage"
    )
    assert totals(store) == before
    report = store.compact()
    assert report["removed_files"] == 4  # executions, events, rollup, and the .tmp
    assert not (store.lake / orphan.executions_path).exists()
    assert not (store.lake / orphan.rollup_path).exists()
    assert totals(store) == before


def test_small_segments_of_a_date_merge_into_one(store):
    for batch in range(6):
        store.append_many([run(f"agent{batch}", T0 + batch * 100 + i) for i in range(4)])
        store.compact()
    segments = store.segments()
    assert len(segments) < 6
    assert sum(s.executions for s in segments) == 24
    assert totals(store) == (24, 24, 0.024, 2880)
    merged = max(segments, key=lambda s: s.executions)
    table = pq.read_table(store.lake / merged.executions_path)
    assert table.column("started_at").to_pylist() == sorted(table.column("started_at").to_pylist())
    # The replaced files go once no reader can hold them any more.
    assert len(store._compactor.orphans()) > 0
    store._compactor.cleanup(grace=0.0)
    assert store._compactor.orphans() == []
    assert totals(store) == (24, 24, 0.024, 2880)


def test_delete_old_executions_counts_tail_whole_and_split_segments(store):
    # Day 0 whole segment (3), day 1 segment split by the cutoff (2 before, 2 after), tail (2 old, 1 new).
    store.append_many([run("a", T0 + i) for i in range(3)])
    store.append_many([run("a", T0 + DAY + i) for i in range(4)])
    store.compact()
    store.append_many([run("a", T0 + 5), run("a", T0 + DAY + 1.5), run("a", T0 + 3 * DAY)])
    cutoff = T0 + DAY + 2  # runs at T0+DAY+0, +1 and +1.5 are older, +2 and +3 are not
    deleted = store.delete_old_executions(cutoff)
    assert deleted == 3 + 2 + 2
    left = sorted(e["started_at"] for e in store.get_executions(limit=100))
    assert left == [T0 + DAY + 2, T0 + DAY + 3, T0 + 3 * DAY]
    events = store.events_frame()
    assert events.height == 3
    assert store.delete_old_executions(cutoff) == 0


def test_clear_all_removes_rows_and_files(store):
    store.append_many([run("a", T0 + i) for i in range(5)])
    store.compact()
    store.append(*run("a", T0 + 10))
    store.clear_all()
    assert totals(store) == (0, 0, 0.0, 0)
    assert store.segments() == []
    assert list(store.lake.rglob("*.parquet")) == []


def test_a_second_compaction_waits_its_turn(store):
    store.append_many([run("a", T0 + i) for i in range(5)])
    with compaction.lake_lock(store.lake):
        report = store._compactor.compact(wait=0.0)
    assert report.get("skipped") and report["executions"] == 0
    assert store.compact()["executions"] == 5


def test_writers_compact_by_themselves_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr("kagura.observability.eventstore.COMPACT_TAIL_ROWS", 600)
    store = EventStore(tmp_path / "t.db")
    # Recent runs, so only the row count can trigger compaction (not the tail's age,
    # which would start one at the first check, at 500 rows, while more are written).
    recent = time.time() - 1500
    for start in range(0, 1500, 100):
        store.append_many([run("a", recent + start + i) for i in range(100)])
    store.close()  # waits for a compaction in progress
    reopened = EventStore(tmp_path / "t.db", auto_compact=False)
    assert sum(s.executions for s in reopened.segments()) >= 600
    assert reopened.get_summary_stats()["total_executions"] == 1500


# --- the tail's two generations (migration m006) ---------------------------------------


def generation_counts(store):
    """Rows in each generation's tables: {0: (executions, events), 1: (...)}."""
    con = store._wal.con()
    return {
        g: tuple(
            con.execute(f"SELECT count(*) FROM {rel}_{g}").fetchone()[0]
            for rel in ("executions", "events")
        )
        for g in (0, 1)
    }


def test_sealing_moves_running_runs_to_the_new_live_generation(store):
    store.append_many([run("a", T0 + i, costs=(0.001, 0.002)) for i in range(5)])
    running = run("a", T0 + 50)
    store.append(dict(running[0], status="running"), running[1])
    assert generation_counts(store) == {0: (6, 11), 1: (0, 0)}
    before = totals(store)
    assert store._compactor._seal()
    # Generation 0 is sealed with the 5 settled runs; the running one and its event went to 1.
    assert generation_counts(store) == {0: (5, 10), 1: (1, 1)}
    assert totals(store) == before  # readers see every run once, sealed or not
    store.append(*run("a", T0 + 60))  # writers append to the live generation
    assert generation_counts(store)[1] == (2, 2)
    report = store.compact()
    assert (report["executions"], report["events"]) == (6, 11)
    # The sealed generation 0 moved first; then 1 was sealed and moved, the running run
    # going back to 0, live again.
    assert generation_counts(store) == {0: (1, 1), 1: (0, 0)}
    assert totals(store) == (7, 12, 0.017, 1440)


def test_a_run_written_again_while_sealed_is_moved_once_with_its_new_content(store):
    pairs = [run("a", T0 + i) for i in range(20)]
    store.append_many(pairs)
    again = run("a", T0 + 5, costs=(0.004, 0.004, 0.004))
    again = (
        dict(again[0], id=pairs[5][0]["id"], trace_id=pairs[5][0]["id"]),
        [dict(e, execution_id=pairs[5][0]["id"]) for e in again[1]],
    )
    comp = store._compactor
    write = comp._write_by_date
    calls = []

    def written_meanwhile(executions, *rest):
        # Between reading the sealed generation and the commit, the run is saved again.
        if not calls:
            store.append(*again)
        calls.append(executions.num_rows)
        return write(executions, *rest)

    comp._write_by_date = written_meanwhile
    report = store.compact()
    # The first read had 20 runs; the commit saw one leave, so the generation was read again.
    assert calls == [20, 19]
    assert report["executions"] == 19 and report["events"] == 19
    assert store.tail_size() == {"running": 0, "settled": 1, "events": 3}
    assert totals(store) == (20, 22, 0.031, 2640)
    report = store.compact()  # the run written again, in the live generation, moves next
    assert calls == [20, 19, 1]
    assert report["executions"] == 1 and report["events"] == 3
    assert totals(store) == (20, 22, 0.031, 2640)
    assert store.get_execution(pairs[5][0]["id"])["metrics"]["total_cost"] == pytest.approx(0.012)
    assert store.tail_size() == {"running": 0, "settled": 0, "events": 0}


def test_events_without_their_run_stay_in_the_tail_until_it_comes(store):
    pairs = [run("a", T0 + i) for i in range(3)]
    late = run("b", T0 + 10, costs=(0.002,))
    store.append_many(pairs)
    with store._wal.write() as con:  # through the view, as the OTel receiver writes
        con.execute(
            "INSERT OR REPLACE INTO events (execution_id, seq, type, name, started_at) "
            "VALUES (?, 0, 'llm_call', 'gpt-4o-mini', ?)",
            (late[0]["id"], T0 + 10),
        )
    report = store.compact()
    assert (report["executions"], report["events"]) == (3, 3)
    assert store.tail_size() == {"running": 0, "settled": 0, "events": 1}
    store.append(late[0])  # the run, without events: the one waiting is its event
    report = store.compact()
    assert (report["executions"], report["events"]) == (1, 1)
    assert store.tail_size() == {"running": 0, "settled": 0, "events": 0}
    assert store.get_summary_stats()["total_executions"] == 4
    assert len(store.get_execution(late[0]["id"])["events"]) == 1


def test_writes_through_the_views_reach_the_right_generation(store):
    pairs = [run("a", T0 + i) for i in range(4)]
    store.append_many(pairs)
    assert store._compactor._seal()  # generation 0 sealed, 1 live
    first = pairs[0][0]["id"]
    with store._wal.write() as con:
        from kagura.observability.store.rows import EXECUTION_NAMES

        row = dict(pairs[0][0], agent_name="renamed")
        con.execute(
            f"INSERT OR REPLACE INTO executions ({', '.join(EXECUTION_NAMES)}) "
            f"VALUES ({', '.join('?' for _ in EXECUTION_NAMES)})",
            [row[n] for n in EXECUTION_NAMES],
        )
        con.execute("UPDATE executions SET tags = '{\"k\": 1}' WHERE id = ?", (pairs[1][0]["id"],))
        con.execute("DELETE FROM executions WHERE id = ?", (pairs[2][0]["id"],))
    con = store._wal.con()
    # The run written again left the sealed table for the live one; no run is in both.
    assert (
        con.execute("SELECT count(*) FROM executions_1 WHERE id = ?", (first,)).fetchone()[0] == 1
    )
    assert (
        con.execute("SELECT count(*) FROM executions_0 WHERE id = ?", (first,)).fetchone()[0] == 0
    )
    assert con.execute("SELECT count(*) FROM executions").fetchone()[0] == 3
    assert (
        con.execute("SELECT tags FROM executions WHERE id = ?", (pairs[1][0]["id"],)).fetchone()[0]
        == '{"k": 1}'
    )
    store.compact()
    assert sorted(r["agent_name"] for r in store.get_executions()) == ["a", "a", "renamed"]


@pytest.mark.parametrize("adbc", [False, True])
def test_each_date_gets_exactly_its_runs_and_their_events(tmp_path, adbc):
    if adbc:
        pytest.importorskip("adbc_driver_sqlite")
    # Days interleaved in the order written (so neither the runs nor the events come in
    # order of start), two runs starting at the same second (ordered by id), and a day whose
    # only run has no events.
    starts = [T0 + 2 * DAY + 5, T0 + 40, T0 + DAY + 7, T0 + 40, T0 + 2 * DAY + 1, T0 + 3]
    pairs = [run("a", t, costs=(0.001, 0.002), tools=1) for t in starts]
    lonely = run("b", T0 + 3 * DAY + 9, costs=())
    with EventStore(tmp_path / "t.db", auto_compact=False) as store:
        store.append_many([*pairs, lonely])
        report = store._compactor.compact(arrow_reader=adbc)
        assert report["reader"] == ("adbc" if adbc else "sqlite3")
        assert report["executions"] == 7 and report["events"] == 18
        by_date = {s.date: s for s in store.segments()}
        assert sorted(by_date) == ["2025-06-15", "2025-06-16", "2025-06-17", "2025-06-18"]
        for date, seg in by_date.items():
            runs = pq.read_table(store.lake / seg.executions_path)
            events = pq.read_table(store.lake / seg.events_path)
            expected = sorted(
                (row["started_at"], row["id"])
                for row, _ in [*pairs, lonely]
                if time.strftime("%Y-%m-%d", time.gmtime(row["started_at"])) == date
            )
            assert (
                list(
                    zip(
                        runs.column("started_at").to_pylist(),
                        runs.column("id").to_pylist(),
                        strict=True,
                    )
                )
                == expected
            )
            ids = [i for _, i in expected]
            # Each run's events, together and in order, and no other run's.
            want = [
                (e["execution_id"], e["seq"])
                for row, evs in [*pairs, lonely]
                if row["id"] in ids
                for e in evs
            ]
            got = list(
                zip(
                    events.column("execution_id").to_pylist(),
                    events.column("seq").to_pylist(),
                    strict=True,
                )
            )
            assert sorted(got) == sorted(want)
            assert seg.events == len(want) == len(got)
            seen: list[str] = []
            for eid, _seq in got:
                if not seen or seen[-1] != eid:
                    assert eid not in seen, f"{date}: events of {eid} not together"
                    seen.append(eid)
            assert got == sorted(got, key=lambda k: (seen.index(k[0]), k[1]))
        assert by_date["2025-06-18"].events == 0
        assert totals(store) == (7, 12, 0.018, 1440)


def test_emptying_the_sealed_tables_leaves_the_connections_secure_delete_as_it_was(store):
    con = store._wal.con()
    (before,) = con.execute("PRAGMA secure_delete").fetchone()
    store.append_many([run("a", T0 + i) for i in range(50)])
    store.compact()
    assert store.tail_size()["settled"] == 0
    assert con.execute("PRAGMA secure_delete").fetchone() == (before,)
    # Whatever the connection had (0, 1 or FAST, which reads back as 2) comes back.
    for setting, reads in (("0", 0), ("1", 1), ("FAST", 2)):
        con.execute(f"PRAGMA secure_delete = {setting}")
        with store._wal.write() as c:
            compaction._empty_tables(c, ["events_0", "events_1"])
        assert con.execute("PRAGMA secure_delete").fetchone() == (reads,)
    con.execute(f"PRAGMA secure_delete = {before}")
