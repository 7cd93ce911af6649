"""sql/latency_percentiles.sql and sql/model_latency.sql against hand-computed percentiles."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from analytics_rows import DAY, HOUR, llm, run

T0 = 1_749_729_600.0  # 2025-06-12 12:00 UTC


def quantile(values, q):
    """Linear interpolation between closest ranks, computed here independently of DuckDB."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def near(row, value):
    """The expected value as the row may hold it: within 1% when read from rollups (approx)."""
    return pytest.approx(value, rel=0.01 if row.get("approx") else 1e-6)


def test_no_runs_give_no_rows(make_store):
    store = make_store()
    assert store.latency_percentiles() == []
    assert store.model_latency() == []
    assert store.latency_percentiles_frame().height == 0


def test_one_run_is_every_percentile(make_store):
    store = make_store([run("solo", T0, duration=2.5)])
    (row,) = store.latency_percentiles()
    assert row["agent_name"] == "solo" and row["runs"] == 1 and row["date"] is None
    for key in ("mean", "p50", "p90", "p95", "p99", "max"):
        assert row[key] == pytest.approx(2.5)  # exact even from rollups: clamped to min and max


def test_five_runs_by_hand_and_running_runs_left_out(make_store):
    rows = [run("a", T0 + i, duration=d) for i, d in enumerate([5.0, 1.0, 4.0, 2.0, 3.0])]
    rows.append(run("a", T0 + 10, duration=9.0, status="failed", error="boom"))
    rows.append(run("a", T0 + 20, status="running"))
    rows.append(run("b", T0 + 30, duration=7.0))
    store = make_store(rows)
    a, b = store.latency_percentiles()
    # a: durations 1, 2, 3, 4, 5, 9 (the failed run counts; the running one does not).
    # Position (6 - 1) * q between sorted values: p50 2.5 -> 3 + 0.5 * 1 = 3.5;
    # p90 4.5 -> 5 + 0.5 * 4 = 7; p95 4.75 -> 5 + 0.75 * 4 = 8; p99 4.95 -> 5 + 0.95 * 4 = 8.8.
    assert (a["agent_name"], a["runs"], a["failed"]) == ("a", 6, 1)
    assert a["mean"] == pytest.approx(24 / 6)
    assert (a["p50"], a["p90"], a["p95"], a["p99"]) == near(a, (3.5, 7.0, 8.0, 8.8))
    assert a["max"] == 9.0
    assert (b["agent_name"], b["runs"], b["p99"]) == ("b", 1, pytest.approx(7.0))


def test_agent_glob_and_time_window(make_store):
    rows = [
        run("project_a_x", T0 - DAY, duration=1.0),
        run("project_a_y", T0, duration=2.0),
        run("project_b", T0, duration=3.0),
    ]
    store = make_store(rows)
    assert [r["agent_name"] for r in store.latency_percentiles("project_a_*")] == [
        "project_a_x",
        "project_a_y",
    ]
    assert [r["agent_name"] for r in store.latency_percentiles(since=T0 - HOUR)] == [
        "project_a_y",
        "project_b",
    ]
    assert [r["agent_name"] for r in store.latency_percentiles(until=T0 - HOUR)] == ["project_a_x"]


def test_random_runs_match_an_independent_computation(make_store):
    rng = random.Random(5)
    durations = {
        "x": [rng.lognormvariate(0, 0.7) for _ in range(137)],
        "y": [rng.uniform(0.1, 3.0) for _ in range(58)],
    }
    rows = [
        run(agent, T0 + i, duration=d) for agent, ds in durations.items() for i, d in enumerate(ds)
    ]
    store = make_store(rows)
    got = {r["agent_name"]: r for r in store.latency_percentiles()}
    for agent, ds in durations.items():
        for key, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            assert got[agent][key] == near(got[agent], quantile(ds, q))


def test_per_day_uses_local_dates_across_midnight(make_store, tokyo):
    # Tokyo midnight of 2025-06-13 is 2025-06-12 15:00 UTC.
    midnight = datetime(2025, 6, 13).timestamp()
    rows = [
        run("night", midnight - 60, duration=120.0),  # starts 23:59 on the 12th, ends on the 13th
        run("night", midnight - 3 * HOUR, duration=1.0),
        run("night", midnight + 60, duration=4.0),
    ]
    store = make_store(rows)
    days = store.latency_percentiles(per_day=True)
    assert [(str(r["date"]), r["runs"]) for r in days] == [("2025-06-12", 2), ("2025-06-13", 1)]
    assert days[0]["p50"] == near(days[0], (1.0 + 120.0) / 2)
    frame = store.latency_percentiles_frame(per_day=True)
    assert frame["runs"].to_list() == [2, 1]


def test_model_latency_from_llm_calls_only(make_store):
    r1, r2 = run("a", T0), run("b", T0 + 10)
    e1 = [
        llm(r1, 0, T0, "gpt-4o", 0.01, duration=1.0, completion=30),
        llm(r1, 1, T0 + 1, "gpt-4o", 0.01, duration=3.0, completion=90),
        llm(r1, 2, T0 + 4, "mini", None, duration=0.5, completion=10),
    ]
    e2 = [llm(r2, 0, T0 + 10, "gpt-4o", 0.02, duration=2.0, completion=60)]
    from kagura.observability.store.rows import event_row

    e2.append(event_row(r2["id"], 1, "tool_call", T0 + 12, name="gpt-4o", duration=50.0))
    store = make_store([(r1, e1), (r2, e2)])
    got = {r["model"]: r for r in store.model_latency()}
    assert set(got) == {"gpt-4o", "mini"}
    g = got["gpt-4o"]
    assert (g["calls"], g["p50"], g["max"]) == (3, pytest.approx(2.0), pytest.approx(3.0))
    assert g["p90"] == pytest.approx(2.0 + 0.8 * 1.0)
    assert g["tokens_per_second"] == pytest.approx((30 + 90 + 60) / 6.0)
    assert got["mini"]["calls"] == 1
    assert [r["model"] for r in store.model_latency(model="g*")] == ["gpt-4o"]


def test_model_latency_since_keeps_calls_of_a_run_that_began_before(make_store, tokyo):
    midnight = datetime(2025, 6, 13).timestamp()
    r = run("night", midnight - 60, duration=600.0)
    events = [
        llm(r, 0, midnight - 50, "m", 0.01, duration=5.0),
        llm(r, 1, midnight + 30, "m", 0.01, duration=7.0),
    ]
    store = make_store([(r, events)])
    (row,) = store.model_latency(since=midnight)
    assert (row["calls"], row["p50"]) == (1, pytest.approx(7.0))
    per_day = store.model_latency(per_day=True)
    assert [(str(x["date"]), x["calls"]) for x in per_day] == [("2025-06-12", 1), ("2025-06-13", 1)]
