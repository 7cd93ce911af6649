"""Rollups: built by hand-checkable rules, written with every segment, kept in step by merges,
retention, the next compaction and the doctor; quantiles read from them within 1%."""

from __future__ import annotations

import math
import sqlite3

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store import compaction, doctor
from kagura.observability.store.rollups import (
    GAMMA,
    ZERO_BUCKET,
    bucket_of,
    bucket_value,
    build_rollup,
    quantile,
)
from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

DAY = 86400.0
H = 3600
T0 = 1_750_000_000.0 - 1_750_000_000.0 % DAY  # 2025-06-15T00:00:00Z


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "telemetry.db", auto_compact=False)
    yield s
    s.close()


def test_rollup_rows_by_hand():
    executions = pa.Table.from_pylist(
        [
            # hour 10, model m1: one completed priced run and one failed unpriced run
            dict(id="a", agent_name="x", model="m1", status="completed", started_at=10 * H + 5,
                 duration=1.0, total_cost=0.5, prompt_tokens=1, completion_tokens=2,
                 total_tokens=3, llm_calls=1, tool_calls=2, unpriced_calls=0),
            dict(id="b", agent_name="x", model="m1", status="failed", started_at=10 * H + 50,
                 duration=2.0, total_cost=None, prompt_tokens=4, completion_tokens=5,
                 total_tokens=9, llm_calls=1, tool_calls=0, unpriced_calls=1),
            # hour 11, no model: a zero duration, a free run, a run without a duration
            dict(id="c", agent_name="x", model=None, status="completed", started_at=11 * H + 5,
                 duration=0.0, total_cost=0.0),
            dict(id="d", agent_name="x", model=None, status="completed", started_at=11 * H + 6,
                 duration=None, total_cost=0.25),
        ],
        schema=EXECUTIONS_SCHEMA,
    )  # fmt: skip
    events = pa.Table.from_pylist(
        [
            dict(execution_id="a", seq=0, type="llm_call", name="m1", started_at=10 * H + 6,
                 cost=0.5, total_tokens=3),
            # b's call runs into hour 11 and used another model
            dict(execution_id="b", seq=0, type="llm_call", name="m2", started_at=11 * H + 1,
                 cost=None, total_tokens=9),
            dict(execution_id="b", seq=1, type="tool_call", name="t", started_at=11 * H + 1),
        ],
        schema=EVENTS_SCHEMA,
    )  # fmt: skip
    rows = {
        (r["hour"], r["model"], r["status"]): r
        for r in build_rollup(executions, events).to_pylist()
    }
    assert set(rows) == {
        (10 * H, "m1", "completed"),
        (10 * H, "m1", "failed"),
        (11 * H, "m2", "failed"),
        (11 * H, None, "completed"),
    }
    done = rows[(10 * H, "m1", "completed")]
    assert (done["runs"], done["failed"], done["unpriced_runs"], done["cost"]) == (1, 0, 0, 0.5)
    assert (done["tool_calls"], done["duration_sum"], done["duration_max"]) == (2, 1.0, 1.0)
    assert done["duration_buckets"] == [0] and done["duration_counts"] == [1]  # 1.0 = GAMMA**0
    assert (done["calls"], done["call_cost"], done["call_tokens"]) == (1, 0.5, 3)
    fail = rows[(10 * H, "m1", "failed")]
    assert (fail["runs"], fail["failed"], fail["unpriced_runs"], fail["cost"]) == (1, 1, 1, None)
    assert fail["duration_buckets"] == [36]  # 1.02**35 = 1.99989 < 2 <= 1.02**36
    assert fail["cost_buckets"] is None and fail["calls"] == 0
    moved = rows[(11 * H, "m2", "failed")]  # a call without a run in its hour and model
    assert (moved["runs"], moved["calls"], moved["call_unpriced"], moved["call_cost"]) == (
        0,
        1,
        1,
        None,
    )
    bare = rows[(11 * H, None, "completed")]
    assert (bare["runs"], bare["duration_count"], bare["cost"], bare["unpriced_runs"]) == (
        2,
        1,
        0.25,
        0,
    )
    assert bare["duration_buckets"] == [ZERO_BUCKET]
    assert bare["cost_buckets"] == [ZERO_BUCKET, -70] and bare["cost_counts"] == [1, 1]
    assert (bare["min_started_at"], bare["max_started_at"]) == (11 * H + 5, 11 * H + 6)


def test_an_empty_table_has_an_empty_rollup():
    assert build_rollup(EXECUTIONS_SCHEMA.empty_table(), EVENTS_SCHEMA.empty_table()).num_rows == 0


def test_buckets_hold_values_within_one_percent():
    values = [1e-9, 0.003, 0.5, 1.0, 1.0199, 1.02, 1.0201, 7.3, 1234.5, 9e5]
    for value, key in zip(values, bucket_of(pa.array(values)).to_pylist(), strict=True):
        assert GAMMA ** (key - 1) < value * (1 + 1e-12) and value <= GAMMA**key * (1 + 1e-12)
        assert abs(bucket_value(key) - value) <= 0.01 * value
    assert bucket_of(pa.array([0.0, -3.0])).to_pylist() == [ZERO_BUCKET, ZERO_BUCKET]


def _exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-4, max_value=1e4), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_quantiles_from_a_histogram_are_within_one_percent(values, q):
    keys = bucket_of(pa.array(values)).to_pylist()
    counts: dict[int, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    estimate = quantile(list(counts), list(counts.values()), q)
    exact = _exact_quantile(values, q)
    assert abs(estimate - exact) <= 0.01 * exact + 1e-12


def _rollup_of(store, seg):
    return pq.read_table(store.lake / seg.rollup_path)


def _check_rollups(store):
    """Every listed segment has a rollup whose runs, cost and tokens equal its own rows."""
    for seg in store.segments():
        assert seg.rollup_path and seg.rollup_path.startswith(f"rollups/date={seg.date}/")
        rollup = _rollup_of(store, seg)
        runs = pq.read_table(store.lake / seg.executions_path)
        assert pc.sum(rollup.column("runs")).as_py() == runs.num_rows == seg.executions
        assert (
            pc.sum(rollup.column("failed")).as_py()
            == pc.sum(pc.equal(runs.column("status"), "failed")).as_py()
        )
        assert (
            pc.sum(rollup.column("total_tokens")).as_py()
            == pc.sum(runs.column("total_tokens")).as_py()
        )
        cost = pc.sum(runs.column("total_cost")).as_py()  # None when no run has a known cost
        assert pc.sum(rollup.column("cost")).as_py() == (
            None if cost is None else pytest.approx(cost, rel=1e-12)
        )


def test_compaction_writes_a_rollup_per_segment_in_the_same_listing(store):
    store.append_many([run("a", T0 + 10 * H + i) for i in range(5)])
    store.append_many([run("b", T0 + DAY + 3 * H, status="failed", costs=(None,))])
    store.compact()
    segments = store.segments()
    assert len(segments) == 2
    _check_rollups(store)
    # Hand count: five runs of "a" in hour 10 of day one, one cost 0.001 each.
    rows = _rollup_of(store, segments[0]).to_pylist()
    # The runs carry no model of their own; their calls count under the model they called.
    assert [(r["hour"], r["agent_name"], r["model"], r["runs"], r["calls"]) for r in rows] == [
        (T0 + 10 * H, "a", "gpt-4o-mini", 0, 5),
        (T0 + 10 * H, "a", None, 5, 0),
    ]
    assert rows[1]["cost"] == pytest.approx(0.005) and rows[0]["call_cost"] == pytest.approx(0.005)
    failed = _rollup_of(store, segments[1]).to_pylist()[1]  # after the row of its call's model
    assert (failed["model"], failed["failed"], failed["unpriced_runs"], failed["cost"]) == (
        None, 1, 1, None,
    )  # fmt: skip
    con = sqlite3.connect(store.path)
    listed = [r[0] for r in con.execute("SELECT rollup_path FROM segments ORDER BY min_started_at")]
    con.close()
    assert listed == [s.rollup_path for s in segments]


def test_merges_rebuild_the_rollup_and_retire_the_old_ones(store):
    for batch in range(6):
        store.append_many([run(f"agent{batch}", T0 + batch * 100 + i) for i in range(4)])
        store.compact()
    segments = store.segments()
    # The fourth compaction merged the four small segments into one.
    assert [s.executions for s in segments] == [16, 4, 4]
    _check_rollups(store)
    merged = _rollup_of(store, segments[0]).to_pylist()
    assert sorted((r["agent_name"], r["runs"]) for r in merged if r["runs"]) == [
        (f"agent{i}", 4) for i in range(4)
    ]
    con = sqlite3.connect(store.path)
    retired = {r[0] for r in con.execute("SELECT path FROM retired_files")}
    con.close()
    assert sum(1 for rel in retired if rel.startswith("rollups/")) >= 4


def test_retention_rewrites_rollups_with_their_segments(store):
    store.append_many([run("a", T0 + i * H) for i in range(10)])
    store.append_many([run("a", T0 + DAY + i * H) for i in range(3)])
    store.compact()
    deleted = store.delete_old_executions(T0 + 4 * H + 1)
    assert deleted == 5
    _check_rollups(store)
    hours = sorted(
        r["hour"]
        for seg in store.segments()
        for r in _rollup_of(store, seg).to_pylist()
        if r["runs"]
    )
    assert hours == [T0 + i * H for i in range(5, 10)] + [T0 + DAY + i * H for i in range(3)]


def _drop_rollups(store):
    """Make the lake one written before rollups: no rollup listed, no rollup file."""
    for seg in store.segments():
        (store.lake / seg.rollup_path).unlink()
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE segments SET rollup_path = NULL")
    con.close()


def test_a_lake_without_rollups_gets_them_at_the_next_compaction(store):
    store.append_many([run("a", T0 + i) for i in range(5)])
    store.compact()
    _drop_rollups(store)
    assert all(s.rollup_path is None for s in store.segments())
    report = store.compact()
    assert report["rollups_built"] == 1
    _check_rollups(store)


def test_doctor_reports_and_rebuilds_missing_or_wrong_rollups(store):
    store.append_many([run("a", T0 + i) for i in range(5)])
    store.append_many([run("a", T0 + DAY + i) for i in range(3)])
    store.compact()
    first, second = store.segments()
    (store.lake / first.rollup_path).unlink()
    # A rollup that counts other runs than its segment holds.
    wrong = build_rollup(*compaction.read_segment(store.lake, first))
    pq.write_table(wrong, store.lake / second.rollup_path)
    report = doctor.check(store)
    problems = {item["segment"]: item["problem"] for item in report["rollups"]}
    assert problems == {
        first.id: "rollup file missing",
        second.id: "rollup counts 5 runs, the segment holds 3",
    }
    assert report["healthy"]  # a rollup is rebuilt from its segment: no run is at risk
    fixed = doctor.repair(store)
    assert sorted(
        a["segment"] for a in fixed["actions"] if a["action"] == "rollup built"
    ) == sorted([first.id, second.id])
    assert fixed["after"]["rollups"] == []
    _check_rollups(store)
