"""One behaviour for one situation, across every command: unknown agents, bad values,
usage errors, empty stores, trend ranges, health verdicts and nested traces."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.store.rows import execution_row, new_execution_id


def one_line(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


AGENT_COMMANDS = [
    ("list",),
    ("list", "--json"),
    ("stats",),
    ("stats", "--json"),
    ("cost",),
    ("cost", "--json"),
    ("cost", "--group-by", "date"),
    ("latency",),
    ("latency", "--json"),
    ("regressions",),
    ("health",),
    ("health", "--json"),
    ("budget",),
    ("budget", "--json"),
    ("errors",),
    ("trend",),
    ("trend", "--json"),
    ("live", "--once"),
]


@pytest.mark.parametrize("args", AGENT_COMMANDS, ids=" ".join)
def test_an_unknown_agent_is_one_line_and_exit_1_everywhere(cli, small, args):
    result = cli("monitor", *args, "--agent", "nobody")
    one_line(result, 1, "'nobody'", "known agents: chatbot")
    assert result.stdout == ""


def test_an_unknown_agent_given_to_the_group_is_refused_too(cli, small):
    result = cli("monitor", "--agent", "nobody", "--once")
    one_line(result, 1, "'nobody'")
    assert result.stdout == ""


def test_a_known_agent_without_runs_in_the_window_is_empty_not_an_error(cli, small):
    result = cli("monitor", "list", "--agent", "translator", "--since", "2099-01-01", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    glob = cli("monitor", "stats", "--agent", "trans*", "--json")
    assert glob.returncode == 0 and json.loads(glob.stdout)["total_executions"] == 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("list", "--limit", str(10**20)), "--limit"),
        (("errors", "--limit", str(10**20)), "--limit"),
        (("sql", "error_groups", "--param", "limit=-1"), "limit=-1"),
        (("sql", "latency_percentiles", "--param", "per_day=maybe"), "per_day=maybe"),
        (("sql", "trace_executions"), "--param trace"),
        (("sql", "regressions", "--param", "min_runs=-5"), "min_runs=-5"),
        (("sql", "agent_health", "--param", "degraded=2"), "degraded=2"),
        (("sql", "select 1", "--list"), "--list"),
        (("list", "--bogus"), "--bogus"),
        (("trace",), "ID"),
        (("nope",), "nope"),
        (("health", "--min-runs", "0"), "--min-runs"),
    ],
)
def test_bad_values_and_usage_are_one_line_and_exit_2(cli, small, args, fragment):
    result = cli("monitor", *args)
    one_line(result, 2, fragment)


def test_the_stats_of_an_empty_store_are_null_not_zero(cli, kagura_home):
    EventStore(kagura_home / "telemetry.db").close()
    result = cli("monitor", "stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["total_executions"] == 0
    for key in ("avg_duration", "p50_duration", "p95_duration", "success_rate"):
        assert stats[key] is None, key
    text = cli("monitor", "stats")
    assert text.returncode == 0 and "Avg Duration: -" in text.stdout


def _row(agent: str, started: float, status: str, duration: float | None = 1.0) -> dict:
    return execution_row(
        id=new_execution_id(at=started),
        agent_name=agent,
        started_at=started,
        ended_at=None if duration is None else started + duration,
        duration=duration,
        status=status,
        error="boom" if status == "failed" else None,
        error_type="ValueError" if status == "failed" else None,
    )


def test_stats_lines_show_abandoned_and_cancelled_runs(cli, small):
    store = EventStore(small.path)
    store.append(_row("chatbot", small.now - 700, "abandoned", None))
    store.append(_row("chatbot", small.now - 710, "cancelled", 0.2))
    store.close()
    result = cli("monitor", "stats")
    assert result.returncode == 0, result.stderr
    assert "• Abandoned: 1" in result.stdout and "• Cancelled: 1" in result.stdout
    stats = json.loads(cli("monitor", "stats", "--json").stdout)
    assert (stats["abandoned"], stats["cancelled"], stats["other"]) == (1, 1, 2)


def test_trend_from_the_epoch_starts_at_the_first_day_with_runs(cli, small):
    result = cli("monitor", "trend", "--since", "0", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    first = min(r["started_at"] for r in small.rows.values())
    last = max(r["started_at"] for r in small.rows.values())
    first_day = datetime.fromtimestamp(first).date()
    last_day = datetime.fromtimestamp(last).date()
    assert rows[0]["date"] == first_day.isoformat()
    assert len(rows) == (last_day - first_day).days + 1


def test_health_needs_a_few_runs_before_a_verdict(cli, small):
    store = EventStore(small.path)
    store.append(_row("flaky", small.now - 60, "failed"))
    store.close()
    rows = {r["agent_name"]: r for r in json.loads(cli("monitor", "health", "--json").stdout)}
    assert rows["flaky"]["status"] == "unknown"  # one failed run out of one: too few
    # translator has 3 finished runs: also below the default of 5
    assert rows["translator"]["status"] == "unknown"
    text = cli("monitor", "health", "--agent", "flaky")
    assert text.returncode == 0 and "too few runs" in text.stdout
    judged = cli("monitor", "health", "--agent", "flaky", "--min-runs", "1", "--json")
    assert judged.returncode == 1  # unhealthy now: the exit code says so
    assert json.loads(judged.stdout)[0]["status"] == "unhealthy"


def test_health_with_no_run_in_its_window_says_how_to_look_further(cli, small):
    old = cli("monitor", "health", "--at", "2001-01-01T00:00:00Z")
    assert old.returncode == 0, old.stderr
    assert "No runs in the last 30d before 2001-01-01T00:00:00Z (look further back" in old.stdout
    short = cli("monitor", "health", "--at", "2001-01-01T00:00:00Z", "--lookback", "1min")
    assert "No runs in the last 1min before" in short.stdout


def test_trace_json_nests_children_with_their_events(cli, small):
    parent = small.rows["r2"]
    result = cli("monitor", "trace", parent["id"], "--json")
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    assert [e["type"] for e in tree["events"]] == ["llm_call", "tool_call"]
    (child,) = tree["children"]
    assert child["id"] == small.rows["s1"]["id"] and child["agent_name"] == "summarizer"
    (event,) = child["events"]
    assert (event["type"], event["name"], event["total_tokens"]) == ("llm_call", "gpt-4o-mini", 300)
    assert child["children"] == []


# --- read-only stores -------------------------------------------------------------------


def _files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_a_read_only_store_is_read_without_creating_a_file(small):
    from kagura.observability.errors import StoreError

    with EventStore(small.path) as store:
        store.compact()  # a lake as well as the tail
    before = _files(small.path.parent)
    store = EventStore(small.path, read_only=True)
    assert store.read_only
    rows = store.get_executions(limit=100)
    assert {r["id"] for r in rows} == {r["id"] for r in small.rows.values()}
    assert store.get_summary_stats()["total_executions"] == len(small.rows)
    assert store.get_execution(small.rows["r2"]["id"])["children"][0]["agent_name"] == "summarizer"
    for write in (
        lambda: store.append(_row("chatbot", small.now, "completed")),
        store.compact,
        store.clear_all,
    ):
        with pytest.raises(StoreError, match="read-only"):
            write()
    store.close()
    assert _files(small.path.parent) == before  # no lock, -shm, -wal or readers file
    with EventStore(small.path) as store:
        assert store.get_summary_stats()["total_executions"] == len(small.rows)


def test_read_commands_work_in_a_read_only_folder(cli, small, tmp_path):
    """The store's folder mounted read-only (a private mount namespace; root only)."""
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a folder read-only")
    with EventStore(small.path) as store:
        store.compact()
    folder = small.path.parent
    before = _files(folder)
    outputs = {}
    for args in (("list", "--all", "--json"), ("stats", "--json"), ("doctor", "--json"), ("cost",)):
        command = " ".join([sys.executable, "-m", "kagura.cli", "monitor", *args])
        result = subprocess.run(
            [
                "unshare", "-m", "sh", "-c",
                f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec {command}',
            ],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, COLUMNS="120"),
        )  # fmt: skip
        if result.returncode != 0 and "mount" in result.stderr:
            pytest.skip(f"mount is not allowed here: {result.stderr.strip()}")
        assert result.returncode == 0, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "read-only" in lines[0], result.stderr
        outputs[args[0]] = result.stdout
    assert len(json.loads(outputs["list"])) == len(small.rows)
    assert json.loads(outputs["stats"])["total_executions"] == len(small.rows)
    assert "Total" in outputs["cost"]
    assert _files(folder) == before
