"""The Dashboard's renderers (printed to a recording Console of fixed width) and the Dashboard on a real store."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from kagura.observability.eventstore import EventStore
from kagura.observability.render import cost as cost_view
from kagura.observability.render import dashboard as dash
from kagura.observability.render import formatting, runs, trace
from kagura.observability.store.rows import (
    event_row,
    execution_row,
    new_execution_id,
    totals_from_events,
)


def text_of(renderable, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# --- formatting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "n/a"),
        (0, "$0.00"),
        (0.0003, "$0.0003"),
        (0.000042, "$0.000042"),
        (0.0512, "$0.0512"),
        (0.00012345, "$0.00012"),
        (1.54, "$1.54"),
        (1234.5, "$1,234.50"),
        (1e-9, "$0.000000001"),
    ],
)
def test_money_has_enough_digits_for_tiny_costs(value, shown):
    assert formatting.fmt_money(value) == shown


@given(st.floats(min_value=1e-12, max_value=1e7))
def test_money_is_never_zero_for_a_cost_and_reads_back_within_5_percent(value):
    shown = formatting.fmt_money(value)
    assert shown != "$0.00"
    number = float(shown[1:].replace(",", ""))
    assert abs(number - value) <= 0.05 * value + 0.005 * (value >= 1)


def test_costs_mark_unknown_and_partial_prices():
    assert formatting.fmt_cost(None) == "?"
    assert formatting.fmt_cost(0.0, unpriced_calls=2) == "?"
    assert formatting.fmt_cost(0.0012, unpriced_calls=1) == "$0.0012+"
    assert formatting.fmt_cost(0.0012) == "$0.0012"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.52, "0.52s"), (59.994, "59.99s"), (125, "2m 05s"), (3720, "1h 02m")],
)
def test_durations(seconds, shown):
    assert formatting.fmt_duration(seconds) == shown


def test_tokens_and_times():
    assert formatting.fmt_tokens(12450) == "12,450"
    now = time.mktime((2024, 5, 28, 15, 0, 0, 0, 0, -1))
    assert formatting.fmt_time(now - 3600, now) == "14:00:00"
    assert formatting.fmt_time(now - 2 * 86400, now) == "05-26 15:00"
    assert formatting.fmt_time(now - 400 * 86400, now) == "2023-04-24"


def test_status_labels_and_colours():
    assert (
        str(formatting.status_text("completed")),
        formatting.status_text("completed").style,
    ) == (
        "✓ COMPLETED",
        "green",
    )
    assert (str(formatting.status_text("failed")), formatting.status_text("failed").style) == (
        "✗ FAILED",
        "red",
    )
    assert (str(formatting.status_text("running")), formatting.status_text("running").style) == (
        "● RUNNING",
        "yellow",
    )


def test_short_ids_only_for_generated_ids():
    generated = new_execution_id()
    assert formatting.short_id(generated) == generated[:21]
    assert formatting.short_id("exec_abc123") == "exec_abc123"


# --- renderers -----------------------------------------------------------------------

TUTORIAL_STATS = {
    "total_executions": 42,
    "completed": 40,
    "failed": 2,
    "running": 0,
    "avg_duration": 1.34,
    "p50_duration": 1.1,
    "p95_duration": 2.9,
    "total_cost": 0.0512,
    "total_tokens": 12450,
    "llm_calls": 45,
    "tool_calls": 12,
    "unpriced_calls": 0,
    "success_rate": 40 / 42 * 100,
}


def test_stats_read_as_the_tutorial_shows():
    out = text_of(runs.render_stats(TUTORIAL_STATS))
    assert out == (
        "📊 Summary Statistics\n"
        "\n"
        "Total Executions: 42\n"
        "  • Completed: 40\n"
        "  • Failed: 2\n"
        "Avg Duration: 1.34s\n"
        "p50 / p95 Duration: 1.10s / 2.90s\n"
        "Total Cost: $0.0512\n"
        "Total Tokens: 12,450\n"
        "LLM Calls: 45\n"
        "Tool Calls: 12\n"
        "\n"
        "Success Rate: 95.2%\n"
    )
    failed_line = next(line for line in out.splitlines() if "Failed:" in line)
    assert failed_line.split()[2] == "2"  # what `awk '{print $3}'` reads


def test_stats_say_when_calls_had_no_price_and_show_running():
    out = text_of(
        runs.render_stats({**TUTORIAL_STATS, "unpriced_calls": 3, "running": 2, "failed": 1234})
    )
    assert "3 LLM calls had no known price" in out
    assert "  • Running: 2" in out
    assert "  • Failed: 1234\n" in out  # no thousands separator: scripts compare it as a number


def _execution(
    agent="translator", status="completed", started=1000.0, duration=0.52, cost=0.0003, **more
):
    row = {
        "id": more.pop("id", new_execution_id(started)),
        "agent_name": agent,
        "status": status,
        "started_at": started,
        "ended_at": None if duration is None or status == "running" else started + duration,
        "duration": duration,
        "metrics": {
            "total_cost": cost,
            "total_tokens": more.pop("tokens", 85),
            "llm_calls": 1,
            "tool_calls": 0,
            "unpriced_calls": more.pop("unpriced", 0),
        },
        "events": [],
    }
    row.update(more)
    return row


def test_history_table_shows_each_run_with_its_id():
    now = time.time()
    rows = [
        _execution("translator", "completed", now - 10, 0.52, 0.0003),
        _execution("chatbot", "running", now - 3, 3.0, None),
        _execution("researcher", "failed", now - 20, 2.11, 0.0008),
    ]
    out = text_of(runs.render_list_table(rows, now=now))
    assert out.startswith("┌─ Execution History ─")
    lines = out.splitlines()
    assert re.match(r"│ Time\s+Agent\s+Status\s+Duration\s+Cost\s+ID\s+│", lines[1])
    assert (
        "translator" in lines[2]
        and "✓ COMPLETED" in lines[2]
        and "0.52s" in lines[2]
        and "$0.0003" in lines[2]
    )
    assert rows[0]["id"][:21] in lines[2]
    assert "● RUNNING" in lines[3] and "3.00s…" in lines[3]
    assert "✗ FAILED" in lines[4] and "2.11s" in lines[4]


def test_narrow_consoles_cut_agent_names_not_numbers_or_ids():
    rows = [
        _execution("a_very_long_agent_name_for_testing", "completed", time.time(), 12.5, 0.000042)
    ]
    out = text_of(runs.render_list_table(rows), width=80)
    line = out.splitlines()[2]
    assert len(line) <= 80
    assert "12.50s" in line and "$0.000042" in line and rows[0]["id"][:21] in line
    assert re.search(r"a_very_l\w*…", line)  # cut, with the mark that says so


def test_live_frame_has_header_table_and_footer():
    stats = {**TUTORIAL_STATS, "running": 1}
    out = text_of(
        runs.render_live(stats, [_execution()], agent_name="translator", refresh_rate=2.0)
    )
    lines = out.splitlines()
    assert lines[0] == "📊 Kagura Agent Monitor  (agent: translator)"
    assert lines[1] == "Total: 42 | Completed: 40 | Failed: 2 | Running: 1"
    assert lines[3].startswith("┌─ Recent Activity ─")
    assert "every 2s · Ctrl+C to exit" in lines[-1]


def test_trace_offsets_are_relative_to_the_start_and_children_nest():
    start = 1_700_000_000.0
    parent = _execution(
        "researcher",
        "failed",
        start,
        2.5,
        0.0008,
        error="timed out",
        error_type="TimeoutError",
        kwargs={"topic": "x"},
    )
    parent["events"] = [
        {
            "type": "llm_call",
            "timestamp": start,
            "name": "gpt-4o-mini",
            "total_tokens": 85,
            "cost": 0.0003,
            "duration": 0.48,
        },
        {"type": "memory_operation", "timestamp": start + 0.48, "name": "store", "duration": 0.02},
        {
            "type": "tool_call",
            "timestamp": start + 0.6,
            "name": "web_search",
            "duration": 0.2,
            "status": "failed",
            "error": "ConnectionError: reset",
        },
        {
            "type": "llm_call",
            "timestamp": start + 2.0,
            "name": "local/llama",
            "total_tokens": 10,
            "cost": None,
            "duration": 0.1,
        },
    ]
    child = _execution(
        "summarizer", "completed", start + 1.0, 0.5, 0.0001, parent_id=parent["id"], tokens=50
    )
    child["events"] = [
        {
            "type": "llm_call",
            "timestamp": start + 1.1,
            "name": "gpt-4o-mini",
            "total_tokens": 40,
            "cost": 0.0001,
            "duration": 0.3,
        }
    ]
    out = text_of(trace.render_trace(parent, [parent, child]))
    assert f"📝 Execution Trace: researcher ({parent['id']})" in out
    assert "Error: TimeoutError: timed out" in out
    assert "Events Timeline (4 events)" in out
    assert "├── [0.00s] LLM Call (gpt-4o-mini) - 85 tokens, $0.0003, 0.48s" in out
    assert "├── [0.48s] Memory Op (store) - 0.02s" in out
    assert "├── [0.60s] Tool Call (web_search) - 0.20s ✗ ConnectionError: reset" in out
    assert f"├── [1.00s] ▶ summarizer ({child['id'][:21]}) ✓ COMPLETED 0.50s, $0.0001" in out
    assert "│   ├── [1.10s] LLM Call (gpt-4o-mini) - 40 tokens, $0.0001, 0.30s" in out
    assert "│   └── [1.50s] Completion" in out
    assert "├── [2.00s] LLM Call (local/llama) - 10 tokens, price unknown, 0.10s" in out
    assert "└── [2.50s] ✗ FAILED: TimeoutError: timed out" in out
    assert "including 1 nested run: $0.0009, 135 tokens" in out  # 0.0008 + 0.0001; 85 + 50


def test_trace_of_a_running_run_says_so():
    now = time.time()
    run = _execution("chatbot", "running", now - 4.0, None, None)
    out = text_of(trace.render_trace(run, now=now))
    assert "Duration: 4.00s so far" in out
    assert "[4.00s] still running (4.00s so far)" in out


def test_cost_table_has_a_total_row_and_marks_unpriced_groups():
    rows = [
        {
            "agent_name": "translator",
            "calls": 23,
            "tokens": 5123,
            "cost": 0.0234,
            "unpriced_calls": 0,
        },
        {"agent_name": "chatbot", "calls": 15, "tokens": 4892, "cost": 0.0189, "unpriced_calls": 1},
        {"agent_name": "local", "calls": 4, "tokens": 2435, "cost": 0.0, "unpriced_calls": 4},
    ]
    out = text_of(cost_view.render_cost_table(rows))
    lines = out.splitlines()
    assert lines[0].startswith("┌─ Cost by Agent ─")
    assert re.search(r"translator\s+23\s+5,123\s+\$0\.0234\s+55\.3%", out)  # 0.0234 / 0.0423
    assert re.search(r"chatbot\s+15\s+4,892\s+\$0\.0189\+\s+44\.7%", out)
    assert re.search(r"local\s+4\s+2,435\s+\?\s", out)
    assert re.search(r"│ ─+ │", lines[-3])  # the rule above the Total row
    assert re.search(r"Total\s+42\s+12,450\s+\$0\.0423\+\s+100\.0%", lines[-2])


def test_cost_by_date_draws_bars_in_proportion():
    rows = [
        {"date": date(2024, 5, 1), "calls": 3, "tokens": 1000, "cost": 0.02, "unpriced_calls": 0},
        {"date": date(2024, 5, 2), "calls": 1, "tokens": 100, "cost": 0.01, "unpriced_calls": 0},
        {"date": date(2024, 5, 3), "calls": 1, "tokens": 10, "cost": 0.0, "unpriced_calls": 0},
    ]
    out = text_of(cost_view.render_cost_by_date(rows, bar_width=24))
    day1, day2, day3 = (
        next(line for line in out.splitlines() if d in line)
        for d in ("2024-05-01", "2024-05-02", "2024-05-03")
    )
    assert day1.count("█") == 24 and day2.count("█") == 12 and "█" not in day3
    assert re.search(r"Total\s+5\s+1,110\s+\$0\.0300", out)


def test_monthly_estimate_says_how_it_was_made():
    out = text_of(
        cost_view.render_monthly_estimate(
            {
                "monthly_estimate": 1.54,
                "window_days": 7.0,
                "window_cost": 0.3593,
                "window_runs": 42,
                "method": "mean daily spend over the last 7 days x 30",
            }
        )
    )
    assert out.splitlines() == [
        "Estimated monthly cost: $1.54",
        "  = mean daily spend over the last 7 days x 30",
        "    from $0.3593 spent in 42 runs",
    ]


# --- the Dashboard on a real store ---------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    store = EventStore(tmp_path / "telemetry.db")
    now = time.time()
    for i, (agent, status, cost) in enumerate(
        [
            ("translator", "completed", 0.0003),
            ("chatbot", "failed", 0.0012),
            ("translator", "completed", 0.0004),
        ]
    ):
        run_id = new_execution_id(now - 100 + i)
        events = [
            event_row(
                run_id,
                0,
                "llm_call",
                now - 100 + i,
                name="gpt-4o-mini",
                prompt_tokens=50,
                completion_tokens=35,
                cost=cost,
                duration=0.4,
            )
        ]
        store.append(
            execution_row(
                id=run_id,
                agent_name=agent,
                started_at=now - 100 + i,
                ended_at=now - 99.5 + i,
                status=status,
                **totals_from_events(events),
            ),
            events,
        )
    yield store
    store.close()


def recording() -> Console:
    return Console(width=110, record=True, color_system=None)


def test_dashboard_methods_print_what_the_store_holds(store):
    board = dash.Dashboard(store, console=recording())
    stats = board.show_stats(agent_name="translator")
    assert stats["total_executions"] == 2
    rows = board.show_list(limit=2)
    assert [r["agent_name"] for r in rows] == ["translator", "chatbot"]
    execution = board.show_trace(rows[1]["id"][:21])
    assert execution["id"] == rows[1]["id"]
    assert board.show_trace("exec_000000000000") is None
    data = board.show_cost_summary()
    assert {r["agent_name"]: r["calls"] for r in data["rows"]} == {"translator": 2, "chatbot": 1}
    board.show_cost_summary(group_by="date")
    out = board.console.export_text()
    assert "Total Executions: 2" in out
    assert "Execution History" in out and "📝 Execution Trace: chatbot" in out
    assert "No execution with id 'exec_000000000000'" in out
    assert re.search(r"Total\s+3\s+255\s+\$0\.0019", out)  # 3 x 85 tokens; 0.0003 + 0.0012 + 0.0004
    assert "Cost by Date" in out and "Estimated monthly cost:" in out


def test_show_live_refreshes_until_ctrl_c(store, monkeypatch):
    board = dash.Dashboard(store, console=recording())
    other = EventStore(store.path)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 1:  # a run is recorded between two frames
            other.append(
                execution_row(
                    id=new_execution_id(),
                    agent_name="newcomer",
                    started_at=time.time(),
                    status="running",
                )
            )
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(dash.time, "sleep", sleep)
    board.show_live(refresh_rate=0.5)  # returns instead of raising: Ctrl+C is the way out
    assert sleeps == [0.5, 0.5]
    out = board.console.export_text()
    assert "Total: 4 | Completed: 2 | Failed: 1 | Running: 1" in out
    assert "newcomer" in out
    other.close()


def test_show_live_once_prints_one_frame(store):
    board = dash.Dashboard(store, console=recording())
    board.show_live(agent_name="chatbot", once=True)
    out = board.console.export_text()
    assert out.count("Kagura Agent Monitor") == 1
    assert "Total: 1 | Completed: 0 | Failed: 1" in out


def test_live_counts_match_the_store_and_old_changes_show_after_a_rebase(tmp_path):
    store = EventStore(tmp_path / "counts.db")
    now = time.time()

    def add(ago: float, status: str) -> None:
        ended = None if status == "running" else now - ago + 1
        store.append(
            execution_row(
                id=new_execution_id(now - ago),
                agent_name="a",
                started_at=now - ago,
                ended_at=ended,
                status=status,
            )
        )

    for ago, status in [
        (86400, "completed"),
        (7200, "failed"),
        (3000, "completed"),
        (100, "completed"),
        (50, "running"),
    ]:
        add(ago, status)
    counter = dash.LiveCounts(store)
    newest = now - 50
    assert counter.counts(newest, now) == {
        "total_executions": 5,
        "completed": 3,
        "failed": 1,
        "running": 1,
    }
    assert counter.cut == newest - dash.LiveCounts.WINDOW
    add(10, "failed")  # a new run: counted at the next frame
    assert counter.counts(now - 10, now + 1)["failed"] == 2
    add(5000, "completed")  # an old run imported late: counted once the base is recounted
    assert counter.counts(now - 10, now + 2)["completed"] == 3
    assert counter.counts(now - 10, now + 2 + dash.LiveCounts.REBASE)["completed"] == 4
    full = store.get_summary_stats()
    assert (
        counter.counts(now - 10, now + 3 + dash.LiveCounts.REBASE)["total_executions"]
        == full["total_executions"]
        == 7
    )
    store.close()


def test_dashboard_reads_include_runs_this_process_just_recorded(tmp_path):
    from kagura.observability import Telemetry

    path = tmp_path / "recorded.db"
    telemetry = Telemetry(EventStore(path))

    @telemetry.instrument("quick")
    def quick(i: int) -> int:
        telemetry.collector.record_llm_call("gpt-4o-mini", 10, 5, 0.01, cost=0.00001)
        return i

    for i in range(50):
        quick(i)
    board = dash.Dashboard(EventStore(path), console=recording())
    stats = (
        board.show_stats()
    )  # the background writer may still hold some: the Dashboard waits for it
    assert (stats["total_executions"], stats["completed"], stats["llm_calls"]) == (50, 50, 50)
