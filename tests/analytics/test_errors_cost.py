"""sql/error_groups.sql, sql/cost_by_model.sql and sql/cost_trend.sql against hand-computed rows."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from analytics_rows import DAY, HOUR, llm, run

NOW = 1_749_729_600.0  # 2025-06-12 12:00 UTC


def failed(agent, at, message, error_type="RuntimeError"):
    return run(agent, at, status="failed", error=message, error_type=error_type)


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        (
            "Request timed out after 30s (request_id=req_8f3a9c2b1d4e)",
            "Request timed out after <n>s (request_id=<id>)",
        ),
        ("File '/home/u/x.txt' not found", "File '<str>' not found"),
        ('said "hello there" twice', 'said "<str>" twice'),
        ("open /var/log/app.log failed: errno 13", "open <path> failed: errno <n>"),
        ("read inbox/00012.pdf and ./rel/p", "read <path> and <path>"),
        ("fetch https://api.example.com/v1/x?q=1 failed", "fetch <url> failed"),
        ("mail to bob@example.com bounced", "mail to <email> bounced"),
        ("row 550e8400-e29b-41d4-a716-446655440000 locked", "row <id> locked"),
        ("object at 0xdeadbeef12 and 8f3a9c2b1d", "object at <id> and <id>"),
        ("refused (10.0.198.44:443, attempt 3 of 3)", "refused (<ip>, attempt <n> of <n>)"),
        (
            "gpt-4o-mini and claude-haiku-4-5-20251001 took 12.5s, x=-3",
            "gpt-4o-mini and claude-haiku-4-5-20251001 took <n>s, x=<n>",
        ),
        ("can't parse user's reply", "can't parse user's reply"),
        ("a   b\n c", "a b c"),
    ],
)
def test_messages_are_normalised(make_store, message, normalised):
    (group,) = make_store([failed("a", NOW, message)]).error_groups()
    assert group["message"] == normalised
    assert group["sample_error"] == message


def test_groups_count_agents_times_and_newest_sample(make_store):
    rows = [
        failed("a", NOW - 3 * HOUR, "Timeout after 10s (id=req_aaaaaa111111)", "TimeoutError"),
        failed("b", NOW - 2 * HOUR, "Timeout after 60s (id=req_bbbbbb222222)", "TimeoutError"),
        failed("a", NOW - 1 * HOUR, "Timeout after 30s (id=req_cccccc333333)", "TimeoutError"),
        failed("a", NOW - 30, "Timeout after 30s (id=req_dddddd444444)", "ValueError"),
        failed("c", NOW - 10, "no such row 7"),
        run("a", NOW, status="completed", error=None),
        run("a", NOW, status="cancelled", error="cancelled by user"),
    ]
    rows[-1]["error"] = "cancelled by user"
    store = make_store(rows)
    groups = store.error_groups()
    assert [(g["error_type"], g["message"], g["count"]) for g in groups] == [
        ("TimeoutError", "Timeout after <n>s (id=<id>)", 3),
        ("RuntimeError", "no such row <n>", 1),
        ("ValueError", "Timeout after <n>s (id=<id>)", 1),
    ]
    top = groups[0]
    assert top["agents"] == ["a", "b"]
    assert (top["first_seen"], top["last_seen"]) == (NOW - 3 * HOUR, NOW - HOUR)
    assert top["sample_id"] == rows[2]["id"]
    assert top["sample_error"] == "Timeout after 30s (id=req_cccccc333333)"
    assert [g["count"] for g in store.error_groups(agent_name="b")] == [1]
    assert [g["count"] for g in store.error_groups(since=NOW - 90 * 60)] == [1, 1, 1]
    assert len(store.error_groups(limit=1)) == 1
    assert store.error_groups_frame()["count"].to_list() == [3, 1, 1]


def test_no_failures_no_groups(make_store):
    assert make_store([run("a", NOW)]).error_groups() == []
    assert make_store().error_groups() == []


def test_unknown_error_type_and_empty_message(make_store):
    row = failed("a", NOW, None, error_type=None)
    (group,) = make_store([row]).error_groups()
    assert (group["error_type"], group["message"], group["count"]) == ("Unknown", "", 1)


# --- cost by model --------------------------------------------------------------------


def test_cost_by_model_counts_each_call_under_its_model(make_store):
    r1, r2, r3 = run("a", NOW - HOUR), run("b", NOW - 2 * HOUR), run("a", NOW - 3 * HOUR)
    pairs = [
        (
            r1,
            [
                llm(r1, 0, NOW - HOUR, "gpt-4o", 0.03, prompt=100, completion=20),
                llm(r1, 1, NOW - HOUR + 5, "mini", 0.001, prompt=50, completion=10),
            ],
        ),
        (
            r2,
            [
                llm(r2, 0, NOW - 2 * HOUR, "gpt-4o", 0.05, prompt=200, completion=40),
                llm(r2, 1, NOW - 2 * HOUR + 5, "local", None, prompt=30, completion=3),
            ],
        ),
        (r3, []),
    ]
    store = make_store(pairs)
    rows = store.cost_by_model_rows()
    assert [(r["model"], r["calls"], r["tokens"], r["unpriced_calls"]) for r in rows] == [
        ("gpt-4o", 2, 360, 0),
        ("mini", 1, 60, 0),
        ("local", 1, 33, 1),
    ]
    assert [r["cost"] for r in rows] == pytest.approx([0.08, 0.001, 0.0])
    assert rows[0]["cost_per_call"] == pytest.approx(0.04)
    assert rows[0]["prompt_tokens"] == 300 and rows[0]["completion_tokens"] == 60
    by_a = store.cost_by_model(agent_name="a")
    assert by_a["model"].to_list() == ["gpt-4o", "mini"]
    assert by_a["cost"].to_list() == pytest.approx([0.03, 0.001])
    assert store.cost_by_model(since=NOW - 90 * 60)["calls"].to_list() == [1, 1]
    assert store.cost_by_model_rows(until=NOW - 90 * 60)[0]["cost"] == pytest.approx(0.05)
    # The shape `kagura monitor cost --group-by model` reads.
    assert store.run("cost_by_model", agent=None, since=None, until=None).rows() == rows


def test_cost_by_model_per_day_and_across_midnight(make_store, tokyo):
    midnight = datetime(2025, 6, 13).timestamp()
    r = run("night", midnight - 60, duration=300.0)
    pairs = [(r, [llm(r, 0, midnight - 50, "m", 0.10), llm(r, 1, midnight + 30, "m", 0.20)])]
    store = make_store(pairs)
    days = store.cost_by_model_rows(per_day=True)
    assert [(str(d["date"]), d["calls"]) for d in days] == [("2025-06-12", 1), ("2025-06-13", 1)]
    assert [d["cost"] for d in days] == pytest.approx([0.10, 0.20])
    # A call after `since` counts even when its run began before it (and its file is older).
    (row,) = store.cost_by_model_rows(since=midnight)
    assert row["cost"] == pytest.approx(0.20)


def test_cost_by_model_with_no_calls(make_store):
    assert make_store().cost_by_model_rows() == []
    assert make_store([run("a", NOW)]).cost_by_model().height == 0


# --- cost trend -------------------------------------------------------------------------


def test_cost_trend_fills_empty_days_and_keeps_a_trailing_mean(make_store, tokyo):
    day = lambda d, h=12: datetime(2025, 6, d, h).timestamp()  # noqa: E731 - local noon
    rows = [
        run("a", day(1), cost=1.0),
        run("a", day(1, 23), cost=2.0),
        run("b", day(3), cost=4.0, unpriced=1),
        run("a", day(4, 0) + 60, cost=None, unpriced=2),  # unknown price: counts as 0
        run("a", day(6), cost=6.0),
    ]
    store = make_store(rows)
    got = store.cost_trend_rows(window=3)
    assert [r["date"] for r in got] == [date(2025, 6, d) for d in range(1, 7)]
    assert [r["cost"] for r in got] == pytest.approx([3.0, 0.0, 4.0, 0.0, 0.0, 6.0])
    assert [r["runs"] for r in got] == [2, 0, 1, 1, 0, 1]
    assert [r["unpriced_calls"] for r in got] == [0, 0, 1, 2, 0, 0]
    # Mean of the 3 days ending on each day (fewer at the start).
    assert [r["trailing_mean"] for r in got] == pytest.approx([3.0, 1.5, 7 / 3, 4 / 3, 4 / 3, 2.0])
    assert [r["cumulative_cost"] for r in got] == pytest.approx([3, 3, 7, 7, 7, 13])
    # From the first day with runs, not from `since` (since=0 must not list 1970 onwards); agent filter.
    since = datetime(2025, 5, 30).timestamp()
    got = store.cost_trend_rows(since=since, agent_name="b")
    assert [str(r["date"]) for r in got] == ["2025-06-03"]
    got = store.cost_trend_rows(since=0, window=3)
    assert [r["date"] for r in got] == [date(2025, 6, d) for d in range(1, 7)]
    assert store.cost_trend(window=3)["cost"].sum() == pytest.approx(13.0)


def test_cost_trend_single_day_and_no_data(make_store):
    assert make_store().cost_trend_rows() == []
    got = make_store([run("a", NOW, cost=0.5), run("a", NOW + 60, cost=0.25)]).cost_trend_rows()
    assert len(got) == 1
    assert (got[0]["cost"], got[0]["trailing_mean"], got[0]["cumulative_cost"]) == pytest.approx(
        (0.75, 0.75, 0.75)
    )


def test_trend_and_budget_agree_with_cost_by_date(make_store):
    rows = [
        run("a", NOW - d * DAY - h * HOUR, cost=0.01 * (d + h)) for d in range(10) for h in range(3)
    ]
    store = make_store(rows)
    by_date = {r["date"]: r["cost"] for r in store.cost_by_date().to_dicts()}
    trend = {r["date"]: r["cost"] for r in store.cost_trend_rows() if r["runs"]}
    assert trend.keys() == by_date.keys()
    for key, value in by_date.items():
        assert trend[key] == pytest.approx(value)
