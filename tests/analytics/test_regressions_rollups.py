"""Regressions from rollups (sql/rollups/regressions.sql) against the scan (sql/regressions.sql).

A store of fixture telemetry, one agent planted 2x slower over its last day, is
compacted (segments with rollups), one old segment loses its rollup (as a lake
from before rollups) and more runs stay in the SQLite tail. Over random windows
the time-window form read from rollups answers as the scan does: counts,
failure rates, cost per run and the failure test exactly; medians and p95s
within 2.5% (both read the same run's value, the scan to 1%, the rollups to 2%);
rank and tail tests close. A flag can differ only where a p-value or a ratio
lies near its threshold (the two paths group values at different resolutions).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from analytics_rows import forget_oldest_rollup, prices, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures

END = fixtures.parse_end("2025-06-12T18:00:00+00:00")
DAY = 86400.0
HOUR = 3600.0
SLOW = "summarizer"
AGENTS = [None, "chatbot", SLOW, "research*"]
TWIN = "sql/rollups/regressions.sql"
SCAN = "sql/regressions.sql"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = EventStore(tmp_path_factory.mktemp("regressions") / "telemetry.db", auto_compact=False)
    slowdown = {"agent": SLOW, "factor": 2.0, "days": 1}
    fixtures.fill(s, 4000, seed=5, days=7, end=END - DAY, prices=prices(), slowdown=slowdown)
    s.compact()
    forget_oldest_rollup(s)  # a segment as a lake written before rollups has it
    fixtures.fill(s, 300, seed=6, days=1, end=END, prices=prices())  # stays in the tail
    assert s.tail_size()["settled"] == 300
    assert sum(1 for seg in s.segments() if seg.rollup_path) >= 4
    yield s
    s.close()


def keyed(result):
    return {(r["scope"], r["agent_name"], r["model"]): r for r in result.rows()}


def z_of(p):
    """The z score of a one-sided p-value (clamped away from 0 and 1)."""
    return NormalDist().inv_cdf(1 - min(max(p, 1e-15), 1 - 1e-15))


# The largest differences seen between the two paths (a record for the docs, not a check).
WORST = {"quantile": 0.0, "z": 0.0, "effect": 0.0}


def compare(planned, scanned, label):
    """Assert that the rollup answer agrees with the scan's; returns the rows compared."""
    got, want = keyed(planned), keyed(scanned)
    assert got.keys() == want.keys(), label
    for key, w in want.items():
        g = {**got[key]}
        assert g["approx"] is (planned.name == TWIN) and w["approx"] is False
        where = (label, key)
        # Exact: counts, rates, cost per run, the failure test and the Bonferroni share.
        for column in ("baseline_runs", "recent_runs", "enough_data"):
            assert g[column] == w[column], (where, column, g[column], w[column])
        for column in (
            "baseline_failure_rate",
            "recent_failure_rate",
            "failure_rate_change",
            "failure_p",
            "baseline_cost_per_run",
            "recent_cost_per_run",
            "cost_ratio",
            "alpha_per_test",
        ):
            if w[column] is None:
                assert g[column] is None, (where, column, g[column])
            else:
                assert math.isclose(g[column], w[column], rel_tol=1e-9, abs_tol=1e-12), (
                    where,
                    column,
                    g[column],
                    w[column],
                )
        # Medians and p95s: the same run's value, to 1% scanned and 2% from rollups.
        for column in ("baseline_median", "recent_median", "baseline_p95", "recent_p95"):
            if w[column] is None:
                assert g[column] is None, (where, column)
                continue
            if w[column] > 0:
                error = abs(g[column] - w[column]) / w[column]
                WORST["quantile"] = max(WORST["quantile"], error)
                assert error <= 0.025, (where, column, g[column], w[column])
            else:
                assert g[column] == 0.0, (where, column)
        for column in ("median_ratio", "p95_ratio"):
            assert (g[column] is None) == (w[column] is None), (where, column)
            if w[column] is not None:
                assert math.isclose(g[column], w[column], rel_tol=0.05), (where, column)
        # Rank tests: values tie within a 2% bucket rather than a 1% step, so U moves a little
        # (compared where each side has 30 runs or more: one more tie among a few runs moves
        # the effect by a lot).
        for p, effect in (("latency_p", "latency_effect"), ("cost_p", "cost_effect")):
            assert (g[p] is None) == (w[p] is None), (where, p)
            if w[p] is None or min(w["recent_runs"], w["baseline_runs"]) < 30:
                continue
            WORST["effect"] = max(WORST["effect"], abs(g[effect] - w[effect]))
            assert abs(g[effect] - w[effect]) <= 0.05, (where, effect, g[effect], w[effect])
            n = max(g["recent_runs"], g["baseline_runs"])
            WORST["z"] = max(WORST["z"], abs(z_of(g[p]) - z_of(w[p])))
            assert abs(z_of(g[p]) - z_of(w[p])) <= 0.25 + 0.02 * math.sqrt(n), (where, p)
        assert (g["tail_p"] is None) == (w["tail_p"] is None), (where, "tail_p")
        # Flags: equal, but for a test whose p-value lies within a factor 4 of its threshold
        # or whose ratio lies within 5% of 1 + min_change on either path.
        alpha = w["alpha_per_test"]
        near = set()
        for flag, p, ratio in (
            ("latency", "latency_p", "median_ratio"),
            ("tail", "tail_p", "p95_ratio"),
            ("cost", "cost_p", "cost_ratio"),
        ):
            for row in (g, w):
                if row[p] is not None and alpha / 4 <= row[p] <= alpha * 4:
                    near.add(flag)
                if row[ratio] is not None and abs(row[ratio] - 1.2) <= 0.05 * 1.2:
                    near.add(flag)
        assert set(g["flags"]) - near == set(w["flags"]) - near, (where, g["flags"], w["flags"])
        assert ("failures" in g["flags"]) == ("failures" in w["flags"]), where


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    now=st.floats(min_value=END - 6 * DAY, max_value=END + HOUR, allow_nan=False),
    recent=st.floats(min_value=600, max_value=3 * DAY),
    baseline=st.floats(min_value=600, max_value=5 * DAY),
    agent=st.sampled_from(AGENTS),
)
def test_rollup_answers_agree_with_the_scan(store, now, recent, baseline, agent):
    options = {"now": now, "recent": recent, "baseline": baseline, "min_runs": 10}
    planned = store.regressions(agent, **options)
    scanned = store.regressions(agent, **options, exact=True)
    assert scanned.name == SCAN
    compare(planned, scanned, options)


def test_both_paths_flag_the_planted_slowdown(store):
    options = {"now": END - DAY, "recent": DAY, "baseline": 5 * DAY}
    planned = store.regressions(**options)
    scanned = store.regressions(**options, exact=True)
    assert (planned.name, scanned.name) == (TWIN, SCAN)
    compare(planned, scanned, options)
    for result in (planned, scanned):
        flagged = {r["agent_name"] for r in result.rows() if r["flagged"]}
        assert flagged == {SLOW}, result.name
        (row,) = [r for r in result.rows() if r["agent_name"] == SLOW and r["scope"] == "agent"]
        assert "latency" in row["flags"] and 1.6 < row["median_ratio"] < 2.4


def test_a_window_with_no_whole_hour(store):
    # 20 + 20 minutes inside one hour: the rollups answer nothing, every run is scanned.
    now = math.floor((END - 2 * DAY) / HOUR) * HOUR + 50 * 60
    options = {"now": now, "recent": 1200, "baseline": 1200, "min_runs": 1}
    planned = store.regressions(**options)
    scanned = store.regressions(**options, exact=True)
    assert planned.name == TWIN
    compare(planned, scanned, options)
    rows = planned.rows()
    assert rows and sum(
        r["recent_runs"] + r["baseline_runs"] for r in rows if r["scope"] == "agent"
    )


def test_an_agent_only_in_the_tail_and_unpriced_runs(tmp_path):
    now = END
    s = EventStore(tmp_path / "telemetry.db", auto_compact=False)
    try:
        times = [now - 10 * DAY + i * 1800.0 for i in range(int(10 * DAY / 1800))]
        # "priced": in the lake; every third completed run unpriced (cost unknown).
        lake = [
            run("priced", t, duration=1.0 + (i % 7) / 10, cost=None if i % 3 == 0 else 0.01)
            for i, t in enumerate(times)
        ]
        # "unpriced": in the lake, no cost ever known.
        lake += [run("unpriced", t, duration=2.0, cost=None) for t in times]
        s.append_many([(r, []) for r in lake])
        s.compact()
        assert s.tail_size()["settled"] == 0 and all(seg.rollup_path for seg in s.segments())
        # "newcomer": only in the SQLite tail, 3 failures among its 12 recent runs.
        tail = [
            run("newcomer", now - DAY + i * 3600.0, duration=3.0, status="failed", error="x")
            if i < 3
            else run("newcomer", now - DAY + i * 3600.0, duration=3.0, cost=0.02)
            for i in range(12)
        ]
        s.append_many([(r, []) for r in tail])
        options = {"now": now, "recent": 2 * DAY, "baseline": 7 * DAY, "min_runs": 5}
        planned = s.regressions(**options)
        scanned = s.regressions(**options, exact=True)
        assert planned.name == TWIN
        compare(planned, scanned, options)
        by_agent = {r["agent_name"]: r for r in planned.rows()}
        new = by_agent["newcomer"]
        assert (new["baseline_runs"], new["recent_runs"]) == (0, 12)
        assert new["recent_failure_rate"] == pytest.approx(3 / 12)
        assert new["recent_cost_per_run"] == pytest.approx(0.02)
        assert new["baseline_cost_per_run"] is None
        # Unknown prices stay unknown: no cost per run, no cost test, never $0.
        unknown = by_agent["unpriced"]
        assert unknown["baseline_cost_per_run"] is None and unknown["recent_cost_per_run"] is None
        assert unknown["cost_ratio"] is None and unknown["cost_p"] is None
        # Cost per run counts priced runs only: 0.01, not diluted by the unpriced third.
        priced = by_agent["priced"]
        assert priced["baseline_cost_per_run"] == pytest.approx(0.01)
        assert priced["recent_cost_per_run"] == pytest.approx(0.01)
        # 96 runs in the 2 recent days, 336 in the 7 before: counted by hand from the spacing.
        assert (priced["baseline_runs"], priced["recent_runs"]) == (336, 96)
    finally:
        s.close()


def test_compare_by_count_scans(store):
    result = store.regressions(now=END, recent_runs=20, baseline_runs=60)
    assert result.name == SCAN
    assert all(r["approx"] is False for r in result.rows())
