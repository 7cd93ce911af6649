"""The analytics commands through the real entry point (`python -m kagura.cli`) in a subprocess.

Each command runs at least once that way; further checks of the same command (its
JSON, other options, usage errors) go through typer's runner on the same app in
process, which is much quicker.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from analytics_rows import DAY, HOUR, PLANTED, llm, run

from kagura.observability.eventstore import EventStore

# 2025-06-12 12:00 UTC; the subprocesses run with TZ=UTC so "today" is that UTC day.
AT = datetime(2025, 6, 12, 12, tzinfo=UTC).timestamp()
AT_TEXT = "2025-06-12T12:00:00+00:00"


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC in this process too (the in-process runs)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def invoke(*args: str, db=None):
    """`kagura monitor ARGS` in process: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from kagura.cli import app

    extra = ["--db", str(db)] if db is not None else []
    result = CliRunner().invoke(app, ["monitor", *args, *extra], env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def kagura(*args: str, db=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="160", TZ="UTC", PYTHONIOENCODING="utf-8")
    extra = ["--db", str(db)] if db is not None else []
    return subprocess.run(
        [sys.executable, "-m", "kagura.cli", "monitor", *args, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A hand-made store: one healthy agent, one failing agent, spend of $1.50 today."""
    path = tmp_path_factory.mktemp("cli") / "telemetry.db"
    store = EventStore(path, auto_compact=False)
    pairs = []
    for i in range(20):
        ok = run("steady", AT - 5 * HOUR + i * 60, duration=1.0 + i / 10, cost=0.05)
        pairs.append((ok, [llm(ok, 0, ok["started_at"], "gpt-4o-mini", 0.05)]))
    for i in range(10):
        bad = run(
            "flaky",
            AT - 4 * HOUR + i * 60,
            status="failed",
            cost=0.05,
            error=f"Timeout after {10 + i}s (request_id=req_{i:012x})",
            error_type="TimeoutError",
        )
        pairs.append((bad, [llm(bad, 0, bad["started_at"], "gpt-4o", 0.05)]))
    pairs.append((run("steady", AT - 3 * DAY, cost=2.0), []))  # earlier this month
    store.append_many(pairs)
    store.close()
    return path


def test_regressions_exit_1_and_name_the_planted_agent(slowed_store, fixture_end, utc):
    at = datetime.fromtimestamp(fixture_end, UTC).isoformat()
    result = kagura("regressions", "--at", at, db=slowed_store.path)
    assert result.returncode == 1, result.stderr
    assert "1 regression(s) flagged" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith(PLANTED))
    assert "✗ latency" in line
    # The runs are in the lake: whole hours come from rollups, and the footer says so.
    assert "read from rollups" in result.stdout and "--exact" in result.stdout
    code, out, _ = invoke("regressions", "--at", at, "--json", db=slowed_store.path)
    assert code == 1 and [r["agent_name"] for r in json.loads(out) if r["flagged"]] == [PLANTED]
    assert all(r["approx"] is True for r in json.loads(out))
    code, out, _ = invoke("regressions", "--at", at, "--json", "--exact", db=slowed_store.path)
    scanned = json.loads(out)
    assert code == 1 and [r["agent_name"] for r in scanned if r["flagged"]] == [PLANTED]
    assert all(r["approx"] is False for r in scanned)
    code, out, _ = invoke("regressions", "--at", at, "--exact", db=slowed_store.path)
    assert code == 1 and "read from rollups" not in out


def test_regressions_exit_0_on_plain_fixture_telemetry(fixture_store, fixture_end):
    at = datetime.fromtimestamp(fixture_end, UTC).isoformat()
    result = kagura(
        "regressions", "--at", at, "--recent", "48h", "--baseline", "2w", db=fixture_store.path
    )
    assert result.returncode == 0, result.stderr
    assert (
        "No regressions." in result.stdout and "Last 48h against the 2w before it" in result.stdout
    )


def test_health_exit_1_when_an_agent_is_unhealthy(small, utc):
    result = kagura("health", "--at", AT_TEXT, db=small)
    assert result.returncode == 1
    lines = {x.split()[0]: x for x in result.stdout.splitlines() if x.strip()}
    assert "✗ unhealthy" in lines["flaky"] and "10/10" in lines["flaky"]
    assert "✓ healthy" in lines["steady"]
    code, out, _ = invoke("health", "--at", AT_TEXT, "--json", "--agent", "steady", db=small)
    assert code == 0
    assert [
        (r["agent_name"], r["status"], r["failed"], r["considered"]) for r in json.loads(out)
    ] == [("steady", "healthy", 0, 20)]


def test_budget_exit_1_when_exceeded(small, utc):
    result = kagura("budget", "--daily", "1.00", "--monthly", "30", "--at", AT_TEXT, db=small)
    assert result.returncode == 1
    assert "$1.50 of $1.00 daily budget (150%)" in result.stdout and "EXCEEDED" in result.stdout
    assert "$3.50 of $30.00 monthly budget" in result.stdout
    code, out, _ = invoke(
        "budget", "--daily", "2", "--monthly", "30", "--at", AT_TEXT, "--json", db=small
    )
    assert code == 0
    status = json.loads(out)
    assert status["today_cost"] == pytest.approx(1.50) and status["month_cost"] == pytest.approx(
        3.50
    )
    assert status["daily_exceeded"] is False
    code, out, _ = invoke("budget", "--daily", "2", "--monthly", "30", "--at", AT_TEXT, db=small)
    assert code == 0 and "Projected month end:" in out


def test_errors_latency_and_trend(small, utc):
    groups = json.loads(invoke("errors", "--json", db=small)[1])
    assert [(g["error_type"], g["message"], g["count"]) for g in groups] == [
        ("TimeoutError", "Timeout after <n>s (request_id=<id>)", 10)
    ]
    table = kagura("errors", db=small)
    assert table.returncode == 0 and "Timeout after <n>s" in table.stdout
    latency = json.loads(kagura("latency", "--json", "--agent", "steady", db=small).stdout)
    assert latency[0]["runs"] == 21 and latency[0]["max"] == pytest.approx(2.9)
    by_model = json.loads(invoke("latency", "--by", "model", "--json", db=small)[1])
    assert {r["model"]: r["calls"] for r in by_model} == {"gpt-4o": 10, "gpt-4o-mini": 20}
    trend = json.loads(invoke("trend", "--since", "2025-06-09", "--json", db=small)[1])
    assert [(r["date"], round(r["cost"], 2)) for r in trend["rows"]] == [
        ("2025-06-09", 2.0),
        ("2025-06-10", 0.0),
        ("2025-06-11", 0.0),
        ("2025-06-12", 1.5),
    ]
    assert "month-to-date spend" in trend["projection"]["method"]
    assert "Cost by day" in kagura("trend", "--since", "2025-06-09", db=small).stdout


def test_sql_named_adhoc_csv_and_list(small, utc):
    listed = kagura("sql", "--list")
    assert listed.returncode == 0
    for name in ("regressions", "agent_health", "budget_status", "cost_by_model", "error_groups"):
        assert name in listed.stdout
    named = json.loads(
        invoke("sql", "cost_by_model", "--param", "since=2025-06-12", "--json", db=small)[1]
    )
    assert {r["model"]: r["calls"] for r in named} == {"gpt-4o": 10, "gpt-4o-mini": 20}
    out = kagura(
        "sql",
        "SELECT agent_name, count(*) AS n FROM executions WHERE status = $s GROUP BY 1 ORDER BY 1",
        "-p",
        "s=failed",
        "--csv",
        db=small,
    )
    assert list(csv.reader(io.StringIO(out.stdout))) == [["agent_name", "n"], ["flaky", "10"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sql", "DELETE FROM executions"), "only SELECT queries may run here"),
        (("sql", "SELECT * FROM read_csv('/etc/passwd')"), "read_csv() is not allowed"),
        (("sql", "SELECT 1; SELECT 2"), "exactly one statement"),
        (("sql", "no_such_query"), "no query named 'no_such_query'"),
        (("sql", "cost_by_date", "--param", "nope=1"), "takes no param nope"),
        (("sql", "cost_by_date", "--param", "since"), "write NAME=VALUE"),
        (("regressions", "--recent", "soon"), "--recent 'soon' is not a span"),
        (("regressions", "--baseline-runs", "5"), "--baseline-runs needs --recent-runs"),
        (("health", "--degraded", "0.6", "--unhealthy", "0.5"), "--degraded must not be above"),
        (("latency", "--by", "tool"), "unknown --by 'tool'"),
        (("errors", "--since", "yesterday"), "--since 'yesterday' is not a time"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(small, args, message):
    # In process (typer's runner on the real app): the parsing is what is under test here.
    from typer.testing import CliRunner

    from kagura.cli import app

    result = CliRunner().invoke(app, ["monitor", *args, "--db", str(small)])
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_refused_query_through_the_entry_point(small):
    result = kagura("sql", "DROP VIEW executions", db=small)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: only SELECT queries may run here")


def test_unknown_agent_and_missing_store(small, tmp_path):
    code, _, err = invoke("errors", "--agent", "nobody", db=small)
    assert code == 1 and "No runs of agent 'nobody'" in err
    result = kagura("health", db=tmp_path / "missing.db")
    assert result.returncode == 1 and "No telemetry yet" in result.stderr
