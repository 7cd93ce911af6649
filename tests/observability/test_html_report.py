"""The HTML report's data and page, without a browser: numbers by hand, escaping, bounds.

The browser test (test_html_report_browser.py) loads the same page in Chromium.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from report_seed import EVE, HOSTILE, noon, seed

from kagura.observability.eventstore import EventStore
from kagura.observability.render import report


@pytest.fixture
def seeded(tmp_path):
    return seed(tmp_path / "telemetry.db")


def _collect(path, **options):
    store = EventStore(path)
    try:
        return report.collect(store, since=noon(30), **options)
    finally:
        store.close()


def _embedded(page: str) -> dict:
    found = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert found, "the page has no data element"
    return json.loads(found.group(1))


def test_cost_per_day_and_agent_are_the_seeded_spend(seeded):
    data = _collect(seeded.path)
    by_day = {r["date"]: r["cost"] for r in data["cost_by_date"]}
    assert by_day == pytest.approx(seeded.cost_by_day)
    by_agent = {r["agent_name"]: r["cost"] for r in data["cost_by_agent"]}
    assert by_agent == pytest.approx(seeded.cost_by_agent)
    assert data["summary"]["total_executions"] == 5  # the run 40 days back is outside
    assert data["summary"]["total_cost"] == pytest.approx(0.050)


def test_top_sessions_and_users_by_cost(seeded):
    data = _collect(seeded.path)
    for part, key, expected in (
        (data["sessions"], "session_id", seeded.sessions),
        (data["users"], "user_id", seeded.users),
    ):
        assert [r[key] for r in part["top"]] == list(expected)
        assert {r[key]: r["calls"] for r in part["top"]} == {k: n for k, (n, _) in expected.items()}
        assert {r[key]: r["cost"] for r in part["top"]} == pytest.approx(
            {k: cost for k, (_, cost) in expected.items()}
        )
        assert part["others"] == 0
    assert (data["sessions"]["none"]["calls"], data["sessions"]["none"]["cost"]) == (
        1,
        pytest.approx(0.001),
    )
    assert data["users"]["none"] is None


def test_scores_per_name_and_agent_and_per_run(seeded):
    data = _collect(seeded.path)
    got = {(r["name"], r["group"]): (r["scores"], r["mean"]) for r in data["scores"]}
    assert {k: n for k, (n, _) in got.items()} == {k: n for k, (n, _) in seeded.scores.items()}
    assert {k: m for k, (_, m) in got.items()} == pytest.approx(
        {k: m for k, (_, m) in seeded.scores.items()}
    )
    beta_day8 = data["traces"][list(seeded.traces)[3]]["runs"][0]
    assert [(s["name"], s["value"], s["comment"]) for s in beta_day8["scores"]] == [
        ("quality", 0.4, None),
        ("quality", 0.6, "second look"),
    ]


def test_a_session_narrows_every_section(seeded):
    data = _collect(seeded.path, session="s-1")
    assert data["summary"]["total_executions"] == 3
    assert {r["agent_name"]: r["cost"] for r in data["cost_by_agent"]} == pytest.approx(
        {"alpha": 0.010, "beta": 0.009}
    )
    assert [r["trace_id"] for r in data["runs"]] == [
        t for t in seeded.traces if t not in (seeded.hostile_trace, list(seeded.traces)[2])
    ]
    assert [r["session_id"] for r in data["sessions"]["top"]] == ["s-1"]


def test_top_lists_are_bounded(tmp_path):
    from store_rows import run

    path = tmp_path / "telemetry.db"
    store = EventStore(path)
    # 13 users, user i spending (i + 1) thousandths of a dollar.
    for i in range(report.MAX_TOP + 3):
        execution, events = run("alpha", noon(1) + i, costs=((i + 1) / 1000,))
        execution["user_id"] = f"u{i:02d}"
        store.append(execution, events)
    store.close()
    users = _collect(path)["users"]
    assert [r["user_id"] for r in users["top"]] == [f"u{i:02d}" for i in range(12, 2, -1)]
    assert users["others"] == 3
    assert users["others_cost"] == pytest.approx((1 + 2 + 3) / 1000)


def test_traces_are_the_newest_each_with_its_runs_and_events(seeded):
    data = _collect(seeded.path)
    assert [r["trace_id"] for r in data["runs"]] == list(seeded.traces)
    for trace_id, rows in seeded.traces.items():
        trace = data["traces"][trace_id]
        assert len(trace["runs"]) + sum(len(r["events"]) for r in trace["runs"]) == rows
    nested = data["traces"][seeded.nested_trace]["runs"]
    assert [r["agent_name"] for r in nested] == ["alpha", "beta"]
    assert nested[1]["parent_id"] == nested[0]["id"]
    assert [r["runs"] for r in data["runs"]] == [1, 2, 1, 1]
    # The same runs and events as the store's own get_trace, trace by trace.
    store = EventStore(seeded.path)
    try:
        for trace_id, trace in data["traces"].items():
            reference = store.get_trace(trace_id)
            assert [r["id"] for r in trace["runs"]] == [r["id"] for r in reference]
            assert [len(r["events"]) for r in trace["runs"]] == [
                len(r["events"]) for r in reference
            ]
    finally:
        store.close()


def test_traces_option_bounds_what_is_embedded(seeded):
    data = _collect(seeded.path, traces=2)
    assert list(data["traces"]) == list(seeded.traces)[:2]
    assert _collect(seeded.path, traces=0)["traces"] == {}


def test_long_texts_are_cut_and_say_so(tmp_path):
    from store_rows import run

    path = tmp_path / "telemetry.db"
    store = EventStore(path)
    long_error = "x" * (report.MAX_TEXT + 500)
    store.append(*run("alpha", noon(1), status="failed", error=long_error))
    store.close()
    data = _collect(path)
    error = next(iter(data["traces"].values()))["runs"][0]["error"]
    assert error.startswith("x" * report.MAX_TEXT)
    assert error.endswith("[500 more characters]")


def test_hostile_names_are_text_in_the_page(seeded):
    page = report.render_html(_collect(seeded.path))
    # Nowhere as markup: not in the tables, not in the JSON, not in the title.
    assert "<img" not in page
    assert "</script><" not in page
    assert "<b>bold" not in page and "<i>" not in page
    assert EVE.replace("<", "&lt;").replace(">", "&gt;") in page
    # As escaped text in the tables, and intact in the embedded data.
    assert "&lt;/script&gt;&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in page
    data = _embedded(page)
    assert HOSTILE in {r["agent_name"] for r in data["cost_by_agent"]}
    # One script runs, the page's own, pinned by its hash in the Content-Security-Policy.
    assert len(re.findall(r"<script>", page)) == 1
    policy = html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)[1]
    )
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy


def test_script_json_never_closes_its_element():
    value = {"a": "</script><!-- <script>", "b": "\u2028 & >", "c": [1.5, None, True]}
    text = report.script_json(value)
    assert not set(text) & {"<", ">", "&", "\u2028"}
    assert json.loads(text) == value


def test_page_needs_nothing_from_a_network(seeded):
    page = report.render_html(_collect(seeded.path))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert "default-src &#39;none&#39;" in page


def test_empty_window_renders(tmp_path):
    path = tmp_path / "telemetry.db"
    EventStore(path).close()
    page = report.render_html(_collect(path))
    assert "No runs in this window." in page
    assert _embedded(page)["cost_by_date"] == []
