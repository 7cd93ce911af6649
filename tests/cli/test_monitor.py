"""`kagura monitor` through the real entry point, numbers checked against the rows we stored."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from kagura.observability.eventstore import EventStore


def money(text: str) -> float:
    """The number in a printed amount such as $1,234.50 or $0.0003+."""
    return float(text.strip().lstrip("$").rstrip("+").replace(",", ""))


def field(output: str, label: str) -> str:
    """The value printed after `label:` on its line."""
    match = re.search(rf"^\s*(?:• )?{re.escape(label)}: (.+)$", output, re.M)
    assert match, f"no line {label!r} in:\n{output}"
    return match.group(1).strip()


# --- stats -----------------------------------------------------------------------


def test_stats_prints_the_numbers_of_the_hand_built_store(small, cli):
    result = cli("monitor", "stats")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "📊 Summary Statistics" in out
    # 9 finished runs + 1 running; 7 completed, 2 failed (c2, r1): counted by hand.
    assert field(out, "Total Executions") == "10"
    assert field(out, "Completed") == "7"
    assert field(out, "Failed") == "2"
    assert field(out, "Running") == "1"
    assert field(out, "Success Rate") == "77.8%"  # 7 / 9
    # 0.0003+0.00031+0.00029+0.0012+0.0001+0.0008+0.0005+0.00042 (u1 has no price)
    assert field(out, "Total Cost") == "$0.0039"
    # 85+90+80+700+100+500+400+300+50
    assert field(out, "Total Tokens") == "2,305"
    assert field(out, "LLM Calls") == "9"
    assert field(out, "Tool Calls") == "2"
    assert "1 LLM calls had no known price" in out
    # durations of the 9 finished runs, sorted: .4 .52 .55 .61 .9 1.23 1.5 2.11 3.0
    assert (
        field(out, "Avg Duration")
        == f"{(0.4 + 0.52 + 0.55 + 0.61 + 0.9 + 1.23 + 1.5 + 2.11 + 3.0) / 9:.2f}s"
    )
    assert field(out, "p50 / p95 Duration").startswith("0.90s / ")


def test_stats_agent_filter_and_since_window(small, cli):
    out = cli("monitor", "stats", "--agent", "translator").stdout
    assert field(out, "Total Executions") == "3"
    assert field(out, "Total Cost") == "$0.0009"  # 0.0003 + 0.00031 + 0.00029
    out = cli("monitor", "stats", "--agent", "translator", "--since", "1d").stdout
    assert field(out, "Total Executions") == "2"  # t3 ran two days ago
    out = cli("monitor", "stats", "--agent", "trans*").stdout
    assert field(out, "Total Executions") == "3"


def test_stats_json_equals_the_python_api(small, cli):
    result = cli("monitor", "stats", "--json", "--agent", "chatbot")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    store = EventStore(small.path)
    expected = json.loads(json.dumps(store.get_summary_stats(agent_name="chatbot")))
    assert printed == expected
    assert printed["total_executions"] == 3 and printed["failed"] == 1 and printed["running"] == 1


def test_stats_on_the_fixture_sample_matches_sums_over_its_rows(sample_db, sample_pairs, cli):
    out = cli("monitor", "stats", "--db", str(sample_db)).stdout
    rows = sample_pairs
    statuses = Counter(r["status"] for r in rows)
    assert field(out, "Total Executions") == f"{len(rows):,}"
    assert field(out, "Completed") == str(statuses["completed"])
    assert field(out, "Failed") == str(statuses["failed"])
    assert field(out, "Total Tokens") == f"{sum(r['total_tokens'] for r in rows):,}"
    assert field(out, "LLM Calls") == f"{sum(r['llm_calls'] for r in rows):,}"
    assert field(out, "Tool Calls") == f"{sum(r['tool_calls'] for r in rows):,}"
    cost = sum(r["total_cost"] or 0.0 for r in rows)
    assert abs(money(field(out, "Total Cost")) - cost) <= 0.005 + 1e-9


DAILY_CHECK = r"""#!/bin/bash
# daily_check.sh

# Check for failed executions
failed_count=$(kagura monitor stats | grep "Failed:" | awk '{print $3}')

if [ "$failed_count" -gt 10 ]; then
  echo "⚠️  Alert: $failed_count failed executions"
  # Send notification (email, Slack, etc.)
fi
"""


def _daily_check(tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "daily_check.sh"
    script.write_text(DAILY_CHECK)
    bin_dir = str(Path(sys.executable).parent)
    import os

    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, timeout=60
    )


def test_tutorial_daily_check_script_works_as_written(kagura_home, tmp_path):
    from kagura.observability.store.rows import execution_row, new_execution_id

    store = EventStore(kagura_home / "telemetry.db")
    now = time.time()
    for i in range(15):
        status = "failed" if i < 12 else "completed"
        store.append(
            execution_row(
                id=new_execution_id(),
                agent_name="flaky",
                started_at=now - i,
                ended_at=now - i + 0.1,
                status=status,
                error="boom" if i < 12 else None,
            )
        )
    store.close()
    result = _daily_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "⚠️  Alert: 12 failed executions"


def test_tutorial_daily_check_script_is_quiet_below_the_threshold(small, tmp_path):
    result = _daily_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


# --- list --------------------------------------------------------------------------


def test_list_shows_history_newest_first_with_copyable_ids(small, cli):
    result = cli("monitor", "list", "--limit", "4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Execution History" in out
    lines = [line for line in out.splitlines() if "exec_" in line]
    # newest first: the running chatbot (5 s ago), t1 (10 s), c1 (200 s), c2 (300 s)
    expected = [small.rows[n] for n in ("live", "t1", "c1", "c2")]
    assert len(lines) == 4
    for line, row in zip(lines, expected, strict=True):
        assert row["agent_name"] in line
        shown = re.search(r"(exec_[0-9a-f]+)", line).group(1)
        assert row["id"].startswith(shown) and len(shown) >= 21
    assert "● RUNNING" in lines[0] and "…" in lines[0]
    assert "✓ COMPLETED" in lines[1] and "0.52s" in lines[1] and "$0.0003" in lines[1]
    assert "✗ FAILED" in lines[3]
    # the id shown is enough for `trace`
    shown = re.search(r"(exec_[0-9a-f]+)", lines[1]).group(1)
    trace = cli("monitor", "trace", shown)
    assert trace.returncode == 0, trace.stderr
    assert small.rows["t1"]["id"] in trace.stdout


def test_list_filters_by_status_and_agent(small, cli):
    out = cli("monitor", "list", "--status", "failed").stdout
    ids = re.findall(r"exec_[0-9a-f]+", out)
    assert len(ids) == 2
    assert {small.rows["c2"]["id"][:21], small.rows["r1"]["id"][:21]} == {i[:21] for i in ids}
    out = cli("monitor", "list", "--agent", "translator", "--until", "1d").stdout
    assert len(re.findall(r"exec_[0-9a-f]+", out)) == 1  # only t3, two days old


def test_list_json_equals_the_python_api(small, cli):
    result = cli("monitor", "list", "--all", "--json", "--limit", "50")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = json.loads(json.dumps(EventStore(small.path).get_executions(limit=50)))
    for item in printed + expected:  # a running run's duration is the time elapsed so far
        if item["status"] == "running":
            item["duration"] = None
    assert printed == expected
    assert len(printed) == 10
    assert list(printed[0]) == list(expected[0])  # the same keys in the same order


# --- trace -----------------------------------------------------------------------


def test_trace_shows_info_metrics_and_a_timeline_at_offsets(small, cli):
    row = small.rows["t1"]
    result = cli("monitor", "trace", row["id"][:24])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"📝 Execution Trace: translator ({row['id']})" in out
    assert (
        f"Started: {datetime.fromtimestamp(row['started_at']).strftime('%Y-%m-%d %H:%M:%S')}" in out
    )
    assert "Status: ✓ COMPLETED" in out and "Duration: 0.52s" in out
    assert "total_cost: $0.0003" in out and "total_tokens: 85" in out
    assert "llm_calls: 1" in out and "tool_calls: 0" in out
    assert "Events Timeline (2 events)" in out
    assert "[0.00s] LLM Call (gpt-4o-mini) - 85 tokens, $0.0003, 0.48s" in out
    assert "[0.48s] Memory Op (store) - 0.02s" in out
    assert "[0.52s] Completion" in out


def test_trace_nests_child_runs_and_shows_errors(small, cli):
    out = cli("monitor", "trace", small.rows["r2"]["id"]).stdout
    child = small.rows["s1"]
    assert f"[1.00s] ▶ summarizer ({child['id'][:21]}) ✓ COMPLETED 1.50s, $0.00042" in out
    assert "[1.05s] LLM Call (gpt-4o-mini) - 300 tokens, $0.00042, 1.40s" in out
    assert "[0.60s] Tool Call (fetch_url) - 0.20s" in out
    assert "including 1 nested run: $0.00092, 700 tokens" in out  # 0.0005 + 0.00042; 400 + 300
    # the child's line sits inside the parent's tree, its events one level deeper
    lines = out.splitlines()
    child_line = next(i for i, line in enumerate(lines) if "▶ summarizer" in line)
    assert lines[child_line + 1].startswith("│   ")
    out = cli("monitor", "trace", small.rows["r1"]["id"]).stdout
    assert "Status: ✗ FAILED" in out
    assert "Error: TimeoutError: search timed out after 2s" in out
    assert "[2.11s] ✗ FAILED: TimeoutError: search timed out after 2s" in out


def test_trace_json_equals_get_execution(small, cli):
    row = small.rows["r2"]
    printed = json.loads(cli("monitor", "trace", row["id"], "--json").stdout)
    expected = json.loads(json.dumps(EventStore(small.path).get_execution(row["id"])))
    # The run itself as get_execution has it; its children nested with their own events.
    assert {k: v for k, v in printed.items() if k != "children"} == {
        k: v for k, v in expected.items() if k != "children"
    }
    assert [c["id"] for c in printed["children"]] == [small.rows["s1"]["id"]]
    assert len(printed["events"]) == 2 and len(printed["children"][0]["events"]) == 1


def test_trace_unknown_and_ambiguous_ids(small, cli):
    result = cli("monitor", "trace", "exec_ffffffffffff")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "exec_ffffffffffff" in result.stderr
    assert "kagura monitor list" in result.stderr
    result = cli("monitor", "trace", "exec_")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "give more characters" in result.stderr


# --- cost ------------------------------------------------------------------------

COST_ROW = re.compile(r"│ (\S+)\s+([\d,]+)\s+([\d,]+)\s+(\S+)\s+(\S+) │")


def test_cost_by_agent_table_total_and_monthly_estimate(small, cli):
    result = cli("monitor", "cost")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Cost by Agent" in out
    table = {m.group(1): m.groups()[1:] for m in COST_ROW.finditer(out)}
    per_agent: dict[str, list] = defaultdict(lambda: [0, 0, 0.0])
    for row in small.rows.values():
        item = per_agent[row["agent_name"]]
        item[0] += 1
        item[1] += row["total_tokens"]
        item[2] += row["total_cost"] or 0.0
    for agent, (calls, tokens, cost) in per_agent.items():
        printed = table[agent]
        assert int(printed[0].replace(",", "")) == calls, agent
        assert int(printed[1].replace(",", "")) == tokens, agent
        if agent == "local_agent":
            assert printed[2] == "?"  # its only call had no known price
        else:
            assert abs(money(printed[2]) - cost) < 0.00005, agent
    assert table["Total"][0] == "10" and table["Total"][1] == "2,305"
    assert money(table["Total"][2]) == 0.0039
    # Runs of the last 7 days: all of them; the store is 2 days and 100 s old, so the
    # mean is over that span: 0.00392 / ((2 * 86400 + 100) / 86400) x 30.
    span = (2 * 86_400 + 100) / 86_400
    estimate = money(re.search(r"Estimated monthly cost: (\S+)", out).group(1))
    assert abs(estimate - 0.00392 / span * 30) < 0.0001
    assert "mean daily spend over the last 2.0 days (all the telemetry there is) x 30" in out
    assert "from $0.0039 spent in 10 runs" in out


def test_cost_by_date_has_one_row_and_a_bar_per_day(small, cli):
    out = cli("monitor", "cost", "--group-by", "date").stdout
    assert "Cost by Date" in out
    days: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for row in small.rows.values():
        day = datetime.fromtimestamp(row["started_at"]).date().isoformat()
        days[day][0] += 1
        days[day][1] += row["total_cost"] or 0.0
    for day, (calls, cost) in days.items():
        line = next(line for line in out.splitlines() if day in line)
        assert re.search(rf"{day}\s+{calls}\s", line), line
        if cost == max(c for _, c in days.values()):
            assert "█" * 24 in line  # the most expensive day has the full bar


def test_cost_json_has_stable_keys_and_matches_the_store(small, cli):
    printed = json.loads(cli("monitor", "cost", "--json").stdout)
    assert set(printed) == {"group_by", "rows", "total", "estimate"}
    store = EventStore(small.path)
    assert printed["rows"] == json.loads(json.dumps(store.run("cost_by_agent").rows()))
    assert printed["total"]["calls"] == 10 and printed["total"]["unpriced_calls"] == 1
    assert set(printed["estimate"]) >= {"monthly_estimate", "window_days", "method"}


# --- live view --------------------------------------------------------------------


def test_live_once_shows_header_and_recent_activity_with_running_runs(small, cli):
    result = cli("monitor", "--once")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "📊 Kagura Agent Monitor" in out
    assert "Total: 10 | Completed: 7 | Failed: 2 | Running: 1" in out
    assert "Recent Activity" in out
    running = next(line for line in out.splitlines() if "RUNNING" in line)
    assert "chatbot" in running and re.search(r"\d+\.\d\ds…", running)
    out = cli("monitor", "live", "--once", "--agent", "translator").stdout
    assert "Total: 3 | Completed: 3 | Failed: 0" in out
    assert "chatbot" not in out


# --- maintenance -------------------------------------------------------------------


def test_compact_moves_rows_and_changes_no_answer(small, cli):
    before = json.loads(cli("monitor", "stats", "--json").stdout)
    result = cli("monitor", "compact", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["executions"] == 9  # every settled run; the running one stays in the tail
    assert report["segments"] >= 1
    assert json.loads(cli("monitor", "stats", "--json", "--exact").stdout) == before
    # Read from the rollups compaction wrote: the same counts and sums, percentiles within 1%.
    after = json.loads(cli("monitor", "stats", "--json").stdout)
    assert after.pop("approx") and not before.pop("approx")
    for key in ("p50_duration", "p95_duration"):
        got, want = after.pop(key), before.pop(key)
        assert abs(got - want) <= 0.01 * want, (key, got, want)
    assert after == before
    out = cli("monitor", "compact").stdout
    assert out.startswith("Compacted 0 executions")


def test_prune_deletes_only_runs_older_than_the_cutoff(small, cli):
    dry = cli("monitor", "prune", "--older-than", "1d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would delete 1 runs")  # t3
    assert json.loads(cli("monitor", "stats", "--json").stdout)["total_executions"] == 10
    result = cli("monitor", "prune", "--older-than", "1d", "--yes", "--json")
    assert json.loads(result.stdout)["deleted"] == 1
    remaining = json.loads(cli("monitor", "list", "--all", "--json").stdout)
    assert small.rows["t3"]["id"] not in {r["id"] for r in remaining}
    assert len(remaining) == 9


# --- errors and exit codes ---------------------------------------------------------


def test_no_telemetry_yet_is_one_line_and_exit_1(kagura_home, cli):
    for args in (
        ("monitor", "stats"),
        ("monitor", "list"),
        ("monitor", "--once"),
        ("monitor", "cost"),
        ("monitor", "compact"),
    ):
        result = cli(*args)
        assert result.returncode == 1, args
        assert (
            result.stderr
            == f"Error: No telemetry yet at {kagura_home / 'telemetry.db'}: run an agent or `kagura demo`\n"
        )
    assert not (kagura_home / "telemetry.db").exists()  # reading never creates a store


def test_bad_usage_is_one_line_and_exit_2(small, cli):
    cases = {
        ("monitor", "list", "--since", "yesterday"): "--since 'yesterday' is not a time",
        ("monitor", "list", "--status", "done"): "unknown --status 'done'",
        ("monitor", "cost", "--group-by", "week"): "unknown --group-by 'week'",
        ("monitor", "stats", "--since", "2d", "--until", "3d"): "--since must be before --until",
        ("monitor", "prune", "--older-than", "soon"): "--older-than 'soon' is not a time",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_unknown_agent_says_which_agents_exist(small, cli):
    result = cli("monitor", "stats", "--agent", "transltor")
    assert result.returncode == 1
    assert "No runs of agent 'transltor'" in result.stderr and "translator" in result.stderr


def test_a_file_that_is_not_a_store_is_one_line(tmp_path, cli):
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not telemetry\n" * 100)
    result = cli("monitor", "stats", "--db", str(bogus))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


# --- output conventions -----------------------------------------------------------


def test_no_color_and_pipes_get_plain_text(small, cli):
    colored = cli("monitor", "list", env={"FORCE_COLOR": "1", "TERM": "xterm-256color"}).stdout
    assert "\x1b[" in colored
    plain = cli(
        "monitor", "list", env={"FORCE_COLOR": "1", "NO_COLOR": "1", "TERM": "xterm-256color"}
    ).stdout
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]", plain)  # no foreground colour codes
    piped = cli("monitor", "list").stdout
    assert "\x1b[" not in piped


def test_monitor_never_imports_litellm_and_polars(small):
    code = (
        "import sys, runpy\n"
        "sys.argv = ['kagura'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('kagura.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('litellm', 'polars', 'pydantic') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    for args in (
        ["monitor", "stats"],
        ["monitor", "--once"],  # the live view: counts and the newest runs
        ["monitor", "cost"],
        ["monitor", "trace", small.rows["r2"]["id"]],
    ):
        result = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
        )
        assert "HEAVY=\n" in result.stderr, (args, result.stderr[-500:])


def test_cost_by_model_counts_llm_calls_per_model(small, cli):
    out = cli("monitor", "cost", "--group-by", "model").stdout
    assert "Cost by Model" in out
    table = {m.group(1): m.groups()[1:] for m in COST_ROW.finditer(out)}
    per_model: dict[str, list] = defaultdict(lambda: [0, 0, 0.0])
    for events in small.events.values():
        for event in events:
            if event["type"] == "llm_call":
                item = per_model[event["name"]]
                item[0] += 1
                item[1] += event["total_tokens"]
                item[2] += event["cost"] or 0.0
    assert set(per_model) == {"gpt-4o-mini", "gpt-4o", "local/llama"}
    for name, (calls, tokens, cost) in per_model.items():
        assert table[name][:2] == (str(calls), f"{tokens:,}"), name
        if name == "local/llama":
            assert table[name][2] == "?"
        else:
            assert abs(money(table[name][2]) - cost) < 0.00005, name
