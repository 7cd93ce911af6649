"""The planner: answers read from rollups equal the scan's over random since/until edges.

A store of fixture telemetry is compacted (segments with rollups), one old
segment loses its rollup (as a lake from before rollups), and more runs stay
in the SQLite tail. Every analytic with a rollup twin then answers any window,
on every agent, as a scan does: counts exactly, sums to float rounding,
percentiles within 1%.
"""

from __future__ import annotations

import math

import pytest
from analytics_rows import forget_oldest_rollup, prices
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kagura.observability.eventstore import EventStore
from kagura.observability.store import planner
from kagura.observability.store.tail import Segment
from kagura.synthetic import fixtures

END = fixtures.parse_end("2025-06-12T18:00:00+00:00")
DAY = 86400.0
HOUR = 3600.0
AGENTS = [None, "chatbot", "summarizer", "translator", "research*", "nobody"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = EventStore(tmp_path_factory.mktemp("planner") / "telemetry.db", auto_compact=False)
    fixtures.fill(s, 2500, seed=3, days=6, end=END - DAY, prices=prices())
    s.compact()
    forget_oldest_rollup(s)  # a segment as a lake written before rollups has it
    fixtures.fill(s, 300, seed=4, days=1, end=END, prices=prices())  # stays in the tail
    assert s.tail_size()["settled"] == 300
    assert sum(1 for seg in s.segments() if seg.rollup_path) >= 4
    yield s
    s.close()


def same(got, want, label):
    assert len(got) == len(want), (label, got, want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys(), label
        for key, value in w.items():
            if key == "approx":
                continue
            if key in ("p50", "p90", "p95", "p99", "p50_duration", "p95_duration"):
                # approx: read from rollups (within 1%); otherwise the planner scanned (equal)
                assert not w["approx"]
                tolerance = 0.01 * value if g["approx"] and value is not None else 1e-9
                assert value is None or abs(g[key] - value) <= tolerance, (label, key, g, w)
            elif isinstance(value, float):
                assert math.isclose(g[key], value, rel_tol=1e-9, abs_tol=1e-12), (label, key, g, w)
            else:
                assert g[key] == value, (label, key, g, w)


moments = st.floats(min_value=END - 8 * DAY, max_value=END + HOUR, allow_nan=False)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    since=st.one_of(st.none(), moments),
    span=st.one_of(st.none(), st.floats(min_value=0, max_value=5 * DAY)),
    agent=st.sampled_from(AGENTS),
    per_day=st.booleans(),
)
def test_rollup_answers_equal_scan_answers(store, since, span, agent, per_day):
    until = None if span is None else (since if since is not None else END - 6 * DAY) + span
    window = {"since": since, "until": until}
    same(
        [store.get_summary_stats(agent, **window)],
        [store.get_summary_stats(agent, **window, exact=True)],
        "summary",
    )
    for name, method in (("cost_by_agent", "cost_by_agent"), ("cost_by_date", "cost_by_date")):
        call = getattr(store, method)
        same(
            call(agent_name=agent, **window).to_dicts(),
            call(agent_name=agent, **window, exact=True).to_dicts(),
            name,
        )
    same(
        store.latency_percentiles(agent, per_day=per_day, **window),
        store.latency_percentiles(agent, per_day=per_day, **window, exact=True),
        "latency",
    )
    same(
        store.cost_by_model_rows(agent_name=agent, per_day=per_day, **window),
        store.cost_by_model_rows(agent_name=agent, per_day=per_day, **window, exact=True),
        "cost_by_model",
    )
    same(
        store.cost_trend_rows(agent_name=agent, window=3, **window),
        store.cost_trend_rows(agent_name=agent, window=3, **window, exact=True),
        "cost_trend",
    )
    now = until if until is not None else END
    same(
        [store.budget_status(0.01, 1.0, agent, days=2.5, now=now)],
        [store.budget_status(0.01, 1.0, agent, days=2.5, now=now, exact=True)],
        "budget",
    )
    lookback = None if since is None else max(now - since, 1.0)
    planned = store.agent_health(agent, now=now, lookback=lookback, last=5, min_runs=2)
    store.exact = True
    try:
        scanned = store.agent_health(agent, now=now, lookback=lookback, last=5, min_runs=2)
    finally:
        store.exact = False
    same(planned.rows(), scanned.rows(), "health")


def test_the_rollup_twin_answers_when_segments_have_rollups(store):
    # Health scans only the newest hours: those that hold each agent's last runs.
    assert store.agent_health(now=END - 2 * DAY, last=3).name == "sql/rollups/agent_health.sql"
    assert store.agent_health(now=END - 2 * DAY, last=10**5).name == "sql/agent_health.sql"
    assert store._planned("cost_by_agent").name == "sql/rollups/cost_by_agent.sql"
    assert store._planned("cost_by_agent", exact=True).name == "sql/cost_by_agent.sql"
    assert store.get_summary_stats()["approx"] is True
    assert store.get_summary_stats(exact=True)["approx"] is False
    # A window inside the segment without a rollup: nothing to read from rollups, a plain scan.
    oldest = store.segments()[0]
    assert oldest.rollup_path is None
    inside = {"since": oldest.min_started_at, "until": oldest.min_started_at + HOUR}
    assert store._planned("cost_by_agent", **inside).name == "sql/cost_by_agent.sql"
    store.exact = True
    try:
        assert store._planned("cost_by_agent").name == "sql/cost_by_agent.sql"
    finally:
        store.exact = False


def seg(lo: float, hi: float, rollup: bool = True) -> Segment:
    return Segment("s", "d", "e", "v", lo, hi, 1, 1, 1, 0.0, "r" if rollup else None)


def test_the_plan_scans_only_segments_that_hold_edges():
    a, b, c = seg(0, 86399), seg(86400, 172799), seg(172800, 259199, rollup=False)
    # since 10:30 on day 1, until 05:15 on day 2: both edges in a and b; c is scanned whole.
    p = planner.plan([a, b, c], 10.5 * HOUR, 86400 + 5.25 * HOUR)
    assert (p.covered, p.raw, p.rolled, p.cut_hours) == ([a, b], [], [a, b], [])
    p = planner.plan([a, b, c], 0.0, None)  # whole hours only: no edge to scan
    assert (p.covered, p.raw, p.rolled) == ([a, b], [c], [])
    p = planner.plan([a, b, c], 0.0, None, cuts=(86400 + 100.0,))  # a cut falls in b's first hour
    assert (p.rolled, p.cut_hours) == ([b], [86400.0])


def test_dates_come_from_hours_only_where_midnight_is_on_an_hour():
    assert planner.whole_hour_zone("UTC", [END])
    assert planner.whole_hour_zone("Asia/Tokyo", [END])
    assert not planner.whole_hour_zone("Asia/Kolkata", [END])  # UTC+5:30
    assert planner.rollup_names() == [
        "agent_health",
        "budget_status",
        "cost_by_agent",
        "cost_by_date",
        "cost_by_model",
        "cost_trend",
        "latency_percentiles",
        "regressions",
        "summary_stats",
    ]


def test_the_plan_names_the_spans_it_scans_joined():
    a = seg(0, 3 * DAY)
    p = planner.plan([a], 10.5 * HOUR, DAY + 5.25 * HOUR, cuts=(11 * HOUR + 5.0, DAY + 2 * HOUR))
    # since's partial hour touches the cut hour after it: one span; until's partial hour alone.
    assert p.edges == (
        (10.5 * HOUR, 12 * HOUR),
        (DAY + 2 * HOUR, DAY + 3 * HOUR),
        (DAY + 5 * HOUR, DAY + 5.25 * HOUR),
    )


def test_calls_in_an_edge_hour_of_runs_started_before_it_count_for_their_agent(tmp_path):
    from kagura.observability.store.rows import event_row, execution_row, totals_from_events

    s = EventStore(tmp_path / "telemetry.db", auto_compact=False)
    h = END - 5 * HOUR  # a whole hour, 13:00
    pairs = []
    # (agent, start, seconds from the start to its second call): "early" makes its second
    # call in hour h, 50 s after it started; "ancient" 30 hours after (a long run, whose
    # segment is read for a run of "other" at h - 17 h, the same day).
    runs = [
        ("early", h - 30.0, 50.0),
        ("late", h + 100.0, 50.0),
        ("early", h - 2 * HOUR, 50.0),
        ("ancient", h - 30 * HOUR, 30 * HOUR + 20.0),
        ("other", h - 17 * HOUR, 50.0),
    ]
    for agent, start, later in runs:
        eid = f"exec_{agent}_{int(start)}"
        events = [
            event_row(
                eid,
                i,
                "llm_call",
                start + later * i,
                name="gpt-4o-mini",
                prompt_tokens=10,
                completion_tokens=5,
                cost=0.5 + i,
                duration=1.0,
            )
            for i in range(2)
        ]
        row = execution_row(
            id=eid,
            trace_id=eid,
            parent_id=None,
            agent_name=agent,
            started_at=start,
            ended_at=start + later + 10.0,
            status="completed",
            **totals_from_events(events),
        )
        pairs.append((row, events))
    s.append_many(pairs)
    s.compact()
    assert all(seg.rollup_path for seg in s.segments())
    # since 10 s into hour h: the edge [h + 10, h + 3600) is scanned. The second calls of
    # "early" (started at h - 30) and "ancient" (30 hours before) lie in it; "late" has both.
    for agent, cost in (("early", 1.5), ("ancient", 1.5), ("late", 2.0), (None, 5.0)):
        got = s.cost_by_model_rows(agent_name=agent, since=h + 10.0)
        want = s.cost_by_model_rows(agent_name=agent, since=h + 10.0, exact=True)
        assert [r["cost"] for r in got] == [r["cost"] for r in want] == [cost], agent
    s.close()
