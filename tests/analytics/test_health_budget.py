"""sql/agent_health.sql and sql/budget_status.sql against figures worked out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest
from analytics_rows import DAY, HOUR, run

NOW = 1_749_729_600.0  # 2025-06-12 12:00 UTC


def runs(agent, statuses, start, step=60.0):
    """Runs of `agent` with these statuses, one per `step` seconds from `start` (oldest first)."""
    return [
        run(agent, start + i * step, status=s, error="x" if s == "failed" else None)
        for i, s in enumerate(statuses)
    ]


def test_no_runs_no_agents(make_store):
    assert make_store().agent_health(now=NOW) == []


def test_status_from_the_last_twenty_finished_runs(make_store):
    t = NOW - HOUR
    rows = (
        # 30 failures long ago, then 20 runs with 4 failures: exactly 0.2 is still healthy (> 0.2 degrades).
        runs("steady", ["failed"] * 30 + ["completed"] * 16 + ["failed"] * 4, t - 3000)
        + runs("shaky", ["completed"] * 15 + ["failed"] * 5, t - 2000)  # 0.25: degraded
        + runs("broken", ["completed"] * 9 + ["failed"] * 10 + ["abandoned"], t - 2000)  # 11/20
        + runs("half", ["completed"] * 10 + ["failed"] * 10, t - 2000)  # 0.5 exactly: degraded
        # Running runs are not judged: 2 finished runs, both completed, and 3 running.
        + runs("busy", ["completed", "completed"], t - 100)
        + [run("busy", t + i, status="running") for i in range(3)]
        + [run("starting", t, status="running")]
    )
    store = make_store(rows)
    got = {r["agent_name"]: r for r in store.agent_health(now=NOW)}
    assert (got["steady"]["status"], got["steady"]["considered"], got["steady"]["failed"]) == (
        "healthy",
        20,
        4,
    )
    assert got["steady"]["failure_rate"] == pytest.approx(0.2)
    assert (got["shaky"]["status"], got["shaky"]["failure_rate"]) == ("degraded", 0.25)
    assert (got["broken"]["status"], got["broken"]["failed"]) == ("unhealthy", 11)
    assert got["half"]["status"] == "degraded"
    # Two finished runs are too few for a verdict (min_runs defaults to 5).
    assert (got["busy"]["status"], got["busy"]["considered"], got["busy"]["running"]) == (
        "unknown",
        2,
        3,
    )
    lenient = {r["agent_name"]: r for r in store.agent_health(now=NOW, min_runs=2)}
    assert lenient["busy"]["status"] == "healthy"
    assert (got["starting"]["status"], got["starting"]["considered"]) == ("unknown", 0)
    # Worst first.
    assert [r["agent_name"] for r in store.agent_health(now=NOW)][:3] == ["broken", "half", "shaky"]


def test_thresholds_and_window_are_adjustable(make_store):
    store = make_store(runs("a", ["completed"] * 17 + ["failed"] * 3, NOW - HOUR))
    (row,) = store.agent_health(now=NOW, last=5)
    assert (row["considered"], row["failed"], row["status"]) == (5, 3, "unhealthy")
    (row,) = store.agent_health(now=NOW, degraded=0.1)
    assert row["status"] == "degraded"
    with pytest.raises(ValueError, match="degraded"):
        store.agent_health(degraded=0.6, unhealthy=0.5)


def test_silent_agents(make_store):
    rows = (
        [run("daily", NOW - d * DAY) for d in range(1, 30)]  # last run 1 day ago, gap 1 day
        + [run("gone", NOW - d * HOUR) for d in range(72, 90)]  # hourly until 3 days ago
        + [run("once", NOW - 2 * DAY)]  # one run: silent after the 1-day floor
        + [run("fresh", NOW - 60)]
    )
    got = {r["agent_name"]: r for r in make_store(rows).agent_health(now=NOW)}
    assert got["gone"]["silent"] is True
    assert got["gone"]["seconds_since_last_run"] == pytest.approx(72 * HOUR)
    assert got["gone"]["mean_gap"] == pytest.approx(HOUR)
    # 1 day since the last run, but that is its usual rhythm (10 x 1 day not passed).
    assert got["daily"]["silent"] is False
    assert got["once"]["silent"] is True and got["once"]["mean_gap"] is None
    assert got["fresh"]["silent"] is False
    quiet = {
        r["agent_name"]: r["silent"]
        for r in make_store(rows).agent_health(now=NOW, silent_after=4 * DAY)
    }
    assert quiet["gone"] is False and quiet["once"] is False


# --- budgets ----------------------------------------------------------------------


def test_budget_with_no_runs(make_store):
    got = make_store().budget_status(daily=1.0, monthly=30.0, now=NOW)
    assert (got["today_cost"], got["month_cost"], got["projected_month_end"]) == (0.0, 0.0, 0.0)
    assert (got["daily_exceeded"], got["monthly_exceeded"], got["projected_exceeded"]) == (
        False,
        False,
        False,
    )


def test_budget_today_month_and_projection_in_local_time(make_store, tokyo):
    # Now: 2025-06-12 06:00 in Tokyo. Today began at 00:00 Tokyo; June has 30 days.
    now = datetime(2025, 6, 12, 6, 0).timestamp()
    today = datetime(2025, 6, 12).timestamp()
    rows = [
        run("a", today + 60, cost=0.40),  # today
        run("a", today + 2 * HOUR, cost=0.70, unpriced=2),  # today, with 2 unpriced calls
        run("a", today - 60, cost=0.25),  # 23:59 yesterday (15:59 UTC of the 11th)
        run("a", datetime(2025, 6, 3, 12).timestamp(), cost=2.00),  # this month, 9 days ago
        run("a", datetime(2025, 5, 31, 23, 0).timestamp(), cost=5.00),  # last month
        run("b", today + HOUR, cost=None, unpriced=1),  # unknown price
        run("a", now + 60, cost=9.00),  # after `now`: not counted
    ]
    store = make_store(rows)
    got = store.budget_status(daily=1.00, monthly=3.00, now=now)
    assert got["today_cost"] == pytest.approx(1.10) and got["today_runs"] == 3
    assert got["month_cost"] == pytest.approx(1.10 + 0.25 + 2.00) and got["month_runs"] == 5
    assert got["unpriced_calls"] == 3
    assert got["daily_exceeded"] is True and got["monthly_exceeded"] is True
    # Trailing 7 days: (now - 7 days, now] holds 1.10 + 0.25 (June 3 is 8.75 days back).
    assert got["daily_mean"] == pytest.approx((1.10 + 0.25) / 7)
    days_left = (datetime(2025, 7, 1).timestamp() - now) / DAY  # 18.75
    assert got["days_left"] == pytest.approx(days_left) and got["days_in_month"] == 30
    assert got["projected_month_end"] == pytest.approx(3.35 + (1.35 / 7) * days_left)
    assert "7 days" in got["method"] and "18.8 days left" in got["method"]
    # Budgets are exceeded only when spend is above them.
    got = store.budget_status(daily=1.10, monthly=100.0, now=now)
    assert got["daily_exceeded"] is False and got["projected_exceeded"] is False
    assert store.budget_status(now=now)["daily_budget"] is None
    assert store.budget_status(agent_name="b", now=now)["today_cost"] == 0.0


def test_budget_projection_window_shrinks_to_young_data(make_store):
    rows = [run("a", NOW - 2 * DAY, cost=1.0), run("a", NOW - HOUR, cost=3.0)]
    got = make_store(rows).budget_status(monthly=10.0, now=NOW, days=7)
    # The data is 2 days old: the mean is over 2 days, not 7.
    assert got["daily_mean"] == pytest.approx(4.0 / 2)


def test_budget_refuses_negative_budgets(make_store):
    with pytest.raises(ValueError, match="daily"):
        make_store().budget_status(daily=-1)
