"""EventStore's answers equal an independent computation over the rows it was given.

Each check runs with the rows all in the SQLite tail, all in the Parquet lake,
and spread over both (several segments), so every read path is exercised.
"""

from __future__ import annotations

import asyncio
import fnmatch
import statistics

import pytest
from store_rows import run

from kagura.observability.errors import AmbiguousIdError, QueryError
from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures

END = 1_751_241_600.0  # 2025-06-30T00:00:00Z
N = 700


@pytest.fixture(scope="module")
def pairs():
    return list(fixtures.generate(N, seed=7, days=30, end=END))


@pytest.fixture(scope="module", params=["tail", "lake", "mixed"])
def store(request, tmp_path_factory, pairs):
    """One store a layout, shared by the tests of this module: they only read it."""
    s = EventStore(tmp_path_factory.mktemp("store") / "telemetry.db", auto_compact=False)
    if request.param == "tail":
        s.append_many(pairs)
    elif request.param == "lake":
        s.append_many(pairs)
        s.compact()
    else:
        third = len(pairs) // 3
        for chunk in (pairs[:third], pairs[third : 2 * third]):
            s.append_many(chunk)
            s.compact()
        s.append_many(pairs[2 * third :])
    yield s
    s.close()


def rows(pairs):
    return [r for r, _ in pairs]


def quantile(values, q):
    """Linear interpolation between closest ranks (what DuckDB's quantile_cont does)."""
    values = sorted(values)
    pos = (len(values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def newest(items, limit):
    return sorted(items, key=lambda r: (r["started_at"], r["id"]), reverse=True)[:limit]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"agent_name": "translator"},
        {"agent_name": "project_a_*"},
        {"status": "failed"},
        {"since": END - 7 * 86400},
        {"since": END - 20 * 86400, "until": END - 10 * 86400, "agent_name": "chatbot"},
    ],
)
def test_get_executions_filters_and_orders(store, pairs, filters):
    expected = rows(pairs)
    if "agent_name" in filters:
        expected = [
            r for r in expected if fnmatch.fnmatchcase(r["agent_name"], filters["agent_name"])
        ]
    if "status" in filters:
        expected = [r for r in expected if r["status"] == filters["status"]]
    if "since" in filters:
        expected = [r for r in expected if r["started_at"] >= filters["since"]]
    if "until" in filters:
        expected = [r for r in expected if r["started_at"] < filters["until"]]
    for limit in (1, 7, 100, 10_000):
        got = store.get_executions(limit=limit, **filters)
        assert [e["id"] for e in got] == [r["id"] for r in newest(expected, limit)]
    assert expected, "the filter should match something"


def test_summary_stats_equal_an_independent_computation(store, pairs):
    all_rows = rows(pairs)
    stats = store.get_summary_stats()
    finished = [r for r in all_rows if r["status"] != "running"]
    durations = [r["duration"] for r in finished]
    assert stats["total_executions"] == len(all_rows)
    assert stats["completed"] == sum(r["status"] == "completed" for r in all_rows)
    assert stats["failed"] == sum(r["status"] == "failed" for r in all_rows)
    assert stats["failed"] > 0
    assert stats["avg_duration"] == pytest.approx(statistics.fmean(durations))
    # Read from rollups in the lake: within 1% and marked approx; exact when scanned.
    rel = 0.01 if stats["approx"] else 1e-6
    assert stats["p50_duration"] == pytest.approx(quantile(durations, 0.5), rel=rel)
    assert stats["p95_duration"] == pytest.approx(quantile(durations, 0.95), rel=rel)
    exact = store.get_summary_stats(exact=True)
    assert not exact["approx"] and exact["p50_duration"] == pytest.approx(quantile(durations, 0.5))
    assert stats["total_cost"] == pytest.approx(sum(r["total_cost"] or 0 for r in all_rows))
    assert stats["total_tokens"] == sum(r["total_tokens"] for r in all_rows)
    assert stats["llm_calls"] == sum(r["llm_calls"] for r in all_rows)
    assert stats["tool_calls"] == sum(r["tool_calls"] for r in all_rows)
    assert stats["unpriced_calls"] == sum(r["unpriced_calls"] for r in all_rows)
    assert stats["success_rate"] == pytest.approx(100 * stats["completed"] / len(finished))
    one = store.get_summary_stats(agent_name="translator", since=END - 10 * 86400)
    chosen = [
        r
        for r in all_rows
        if r["agent_name"] == "translator" and r["started_at"] >= END - 10 * 86400
    ]
    assert one["total_executions"] == len(chosen) > 0
    assert one["total_cost"] == pytest.approx(sum(r["total_cost"] or 0 for r in chosen))


def test_cost_frames_equal_an_independent_computation(store, pairs):
    by_agent: dict[str, list[float]] = {}
    for r in rows(pairs):
        by_agent.setdefault(r["agent_name"], []).append(r["total_cost"] or 0.0)
    frame = store.cost_by_agent()
    got = {row["agent_name"]: (row["calls"], row["cost"]) for row in frame.to_dicts()}
    assert set(got) == set(by_agent)
    for agent, costs in by_agent.items():
        assert got[agent][0] == len(costs)
        assert got[agent][1] == pytest.approx(sum(costs))
    assert frame["cost"].to_list() == sorted(frame["cost"].to_list(), reverse=True)
    daily = store.cost_by_date()
    assert daily["calls"].sum() == len(pairs)
    assert daily["cost"].sum() == pytest.approx(sum(r["total_cost"] or 0 for r in rows(pairs)))


def test_get_execution_by_id_prefix_with_events_and_children(store, pairs):
    parent = next(r for r, _ in pairs if any(c["parent_id"] == r["id"] for c, _ in pairs))
    children = sorted(
        (c for c, _ in pairs if c["parent_id"] == parent["id"]),
        key=lambda c: (c["started_at"], c["id"]),
    )
    events = next(e for r, e in pairs if r["id"] == parent["id"])
    for key in (parent["id"], parent["id"][:24]):
        got = store.get_execution(key)
        assert got["id"] == parent["id"] and got["agent_name"] == parent["agent_name"]
        assert [e["seq"] for e in got["events"]] == [e["seq"] for e in events]
        assert [e["type"] for e in got["events"]] == [e["type"] for e in events]
        assert [c["id"] for c in got["children"]] == [c["id"] for c in children]
        assert got["metrics"]["total_tokens"] == parent["total_tokens"]
    assert store.get_execution("exec_ffffffffffff") is None
    with pytest.raises(AmbiguousIdError) as info:
        store.get_execution("exec_")
    assert len(info.value.candidates) > 1


def test_get_trace_returns_the_whole_tree(store, pairs):
    parent = next(r for r, _ in pairs if any(c["parent_id"] == r["id"] for c, _ in pairs))
    trace = store.get_trace(parent["trace_id"])
    expected = sorted(
        (r for r in rows(pairs) if r["trace_id"] == parent["trace_id"]),
        key=lambda r: (r["started_at"], r["id"]),
    )
    assert [t["id"] for t in trace] == [r["id"] for r in expected]
    assert sum(len(t["events"]) for t in trace) == sum(
        len(e) for r, e in pairs if r["trace_id"] == parent["trace_id"]
    )


def test_newest_first_reads_only_the_segments_it_needs(tmp_path):
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    day = 86400.0
    for d in range(6):
        store.append_many(
            [run("old" if d < 5 else "new", END - (6 - d) * day + i) for i in range(20)]
        )
        store.compact()
    assert len(store.segments()) == 6
    # Break an old segment's file: a query that needs only the newest day must not touch it.
    oldest = store.segments()[0]
    (store.lake / oldest.executions_path).write_bytes(b"not parquet")
    assert [e["agent_name"] for e in store.get_executions(limit=5)] == ["new"] * 5
    assert len(store.get_executions(since=END - 1.5 * day)) == 20
    with pytest.raises(QueryError):
        store.get_executions(agent_name="old", limit=100)


def test_save_execution_takes_kaguras_dict(tmp_path):
    store = EventStore(tmp_path / "t.db")
    asyncio.run(
        store.save_execution(
            {
                "id": "exec_abc12345",
                "agent_name": "translator",
                "status": "completed",
                "started_at": 1000.0,
                "ended_at": 1000.5,
                "kwargs": {"text": "Hello"},
                "events": [
                    {
                        "type": "llm_call",
                        "timestamp": 1000.0,
                        "data": {
                            "model": "gpt-4o-mini",
                            "prompt_tokens": 60,
                            "completion_tokens": 25,
                            "cost": 0.0003,
                        },
                    }
                ],
                "metrics": {"total_cost": 0.0003},
            }
        )
    )
    got = store.get_execution("exec_abc1")
    assert got["metrics"]["total_tokens"] == 85 and got["duration"] == 0.5
    assert got["events"][0]["data"]["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: s.get_executions(limit=-1), "limit"),
        (lambda s: s.get_executions(limit=0), "limit"),
        (lambda s: s.get_executions(status="done"), "completed, failed"),
        (lambda s: s.get_executions(since="yesterday"), "since"),
        (lambda s: s.get_execution(""), "id"),
        (lambda s: s.run("no_such_query"), "no query named"),
        (lambda s: s.run("recent_executions", colour="red"), "unknown parameter"),
    ],
)
def test_bad_arguments_say_what_is_allowed(tmp_path, call, message):
    store = EventStore(tmp_path / "t.db")
    with pytest.raises((ValueError, QueryError), match=message):
        call(store)


def test_hostile_strings_are_values_not_sql(tmp_path):
    store = EventStore(tmp_path / "t.db")
    name = "x'; DROP TABLE executions; --"
    store.append(*run(name, 1000.0))
    assert [e["agent_name"] for e in store.get_executions(agent_name=name)] == [name]
    assert store.get_executions(agent_name="%") == []
    assert store.get_execution("exec_'; SELECT 1 --") is None
    assert store.get_summary_stats()["total_executions"] == 1


def test_monthly_projection_by_hand(tmp_path):
    store = EventStore(tmp_path / "t.db")
    now = END
    # 10 days of history; the last 7 days hold 0.7 in cost, older days 5.0.
    store.append(*run("a", now - 9 * 86400, costs=(5.0,)))
    for d in range(7):
        store.append(*run("a", now - d * 86400 - 60, costs=(0.1,)))
    got = store.monthly_projection(days=7, now=now)
    assert got["window_cost"] == pytest.approx(0.7)
    assert got["window_days"] == 7.0
    assert got["monthly_estimate"] == pytest.approx(0.7 / 7 * 30)
    assert got["method"] == "mean daily spend over the last 7 days x 30"
    young = EventStore(tmp_path / "young.db")
    young.append(*run("a", now - 3600, costs=(0.5,)))
    # One hour of history: the window shrinks to its floor of one day.
    young_projection = young.monthly_projection(days=7, now=now)
    assert young_projection["monthly_estimate"] == pytest.approx(15.0)
    assert young_projection["method"] == (
        "mean daily spend over the last 1 day (all the telemetry there is) x 30"
    )
    empty = EventStore(tmp_path / "empty.db").monthly_projection(now=now)
    assert empty["monthly_estimate"] == 0.0 and empty["window_runs"] == 0


def test_status_counts_by_hand(tmp_path):
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    store.append_many([run("a", 1000.0 + i) for i in range(3)])
    store.append_many([run("b", 2000.0 + i, status="failed", error="boom") for i in range(2)])
    store.compact()
    row, _ = run("a", 3000.0)
    store.append(dict(row, status="running", ended_at=None, duration=None))
    counts = {r["status"]: r["runs"] for r in store.run("status_counts").rows()}
    assert counts == {"completed": 3, "failed": 2, "running": 1}
    only_a = {
        r["status"]: r["runs"] for r in store.run("status_counts", agent="a", since=1001.0).rows()
    }
    assert only_a == {"completed": 2, "running": 1}


def test_events_after_since_are_found_when_their_run_started_before(tmp_path):
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    midnight = 1_750_032_000.0  # 2025-06-16T00:00:00Z
    row, events = run("a", midnight - 60, duration=180, costs=(0.1, 0.2))
    events[1]["started_at"] = midnight + 60  # its second call comes after midnight
    store.append(row, events)
    store.compact()
    assert store.segments()[0].date == "2025-06-15"
    after = store.run("execution_events", since=midnight).rows()
    assert [e["seq"] for e in after] == [1]
