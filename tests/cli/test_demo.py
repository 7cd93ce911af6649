"""`kagura demo`: real agent runs recorded offline, spread over days, and the commands it suggests work."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from datetime import datetime

from kagura.cli import demo
from kagura.observability.store.rows import event_row, execution_row, id_time_range


def test_plan_is_deterministic_and_has_failures_of_several_kinds():
    first = demo.plan(60, seed=7)
    assert first == demo.plan(60, seed=7)
    assert first != demo.plan(60, seed=8)
    fates = Counter(fate for _, fate, _ in first)
    assert fates["ok"] > 40
    assert len([f for f in fates if f != "ok"]) >= 3
    small = demo.plan(5, seed=3)
    assert any(name == "researcher" and fate == "ok" for name, fate, _ in small)  # a nested run
    assert {"rate_limit", "bad_output"} <= {fate for _, fate, _ in small}


def test_move_keeps_durations_offsets_and_links_and_gives_ids_of_the_new_time():
    root = execution_row(
        id="exec_a", agent_name="researcher", started_at=100.0, ended_at=103.0, status="completed"
    )
    child = execution_row(
        id="exec_b",
        trace_id="exec_a",
        parent_id="exec_a",
        agent_name="summarizer",
        started_at=101.0,
        ended_at=102.0,
        status="completed",
    )
    other = execution_row(
        id="exec_c", agent_name="translator", started_at=200.0, ended_at=200.5, status="failed"
    )
    events = [
        event_row("exec_b", 0, "llm_call", 101.5, name="gpt-4o-mini", duration=0.4),
        event_row("exec_a", 0, "tool_call", 100.2, name="web_search"),
    ]
    pairs = demo.move([root, child, other], events, [5_000.0, 9_000.0])
    moved = {row["agent_name"]: (row, evs) for row, evs in pairs}
    r, c, o = moved["researcher"][0], moved["summarizer"][0], moved["translator"][0]
    assert (r["started_at"], r["ended_at"]) == (5_000.0, 5_003.0)
    assert (c["started_at"], c["ended_at"]) == (5_001.0, 5_002.0)
    assert (o["started_at"], o["ended_at"]) == (9_000.0, 9_000.5)
    assert c["parent_id"] == r["id"] and c["trace_id"] == r["id"] == r["trace_id"]
    assert (
        moved["summarizer"][1][0]["started_at"] == 5_001.5
        and moved["summarizer"][1][0]["execution_id"] == c["id"]
    )
    assert moved["researcher"][1][0]["started_at"] == 5_000.2
    for row in (r, c, o):
        low, high = id_time_range(row["id"])
        assert low <= row["started_at"] < high


def test_demo_records_real_runs_and_prints_commands_that_work(tmp_path, cli):
    db = tmp_path / "demo.db"
    result = cli("demo", "--db", str(db), "--runs", "12", "--days", "3", timeout=180)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    match = re.search(
        r"Recorded 12 agent runs \((\d+) executions, (\d+) agents\) over the last 3 days", out
    )
    assert match, out
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM executions")]
    events = [dict(r) for r in con.execute("SELECT * FROM events")]
    assert len(rows) == int(match.group(1))
    assert sum(1 for r in rows if r["parent_id"] is None) == 12
    assert len({r["agent_name"] for r in rows}) == int(match.group(2))
    # a researcher run with tools and a nested summarizer run
    children = [r for r in rows if r["parent_id"]]
    assert children and all(r["agent_name"] == "summarizer" for r in children)
    by_id = {r["id"]: r for r in rows}
    parent = by_id[children[0]["parent_id"]]
    assert parent["agent_name"] == "researcher" and children[0]["trace_id"] == parent["id"]
    assert {
        e["name"] for e in events if e["execution_id"] == parent["id"] and e["type"] == "tool_call"
    } >= {"web_search", "fetch_url", "summarize_page"}
    # failures of at least two kinds, recorded with their error types
    failed = [r for r in rows if r["status"] == "failed"]
    assert len({r["error_type"] for r in failed}) >= 2
    # real LLM calls: tokens and a price from the model's name, adding up per run
    llm = [e for e in events if e["type"] == "llm_call"]
    assert {e["name"] for e in llm} <= {"gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "gpt-4.1-mini"}
    assert all(e["cost"] is not None for e in llm)
    for row in rows:
        own = [e for e in events if e["execution_id"] == row["id"]]
        assert abs((row["total_cost"] or 0.0) - sum(e["cost"] or 0.0 for e in own)) < 1e-12
        assert all(
            row["started_at"] - 0.01 <= e["started_at"] <= row["ended_at"] + 0.01 for e in own
        )
    # spread over more than one local day, all in the past
    assert len({datetime.fromtimestamp(r["started_at"]).date() for r in rows}) >= 2
    # the suggested commands run against this store
    suggested = re.findall(r"^  (kagura monitor .*?)\s+# ", out, re.M)
    assert any("trace" in s for s in suggested) and all(f"--db {db}" in s for s in suggested)
    trace = next(s for s in suggested if " trace " in s).split()[3]
    shown = cli("monitor", "trace", trace, "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "▶ summarizer" in shown.stdout and "Tool Call (web_search)" in shown.stdout


def test_demo_refuses_when_telemetry_is_off(tmp_path, cli):
    result = cli("demo", "--db", str(tmp_path / "x.db"), env={"KAGURA_TELEMETRY": "0"})
    assert result.returncode == 2
    assert "KAGURA_TELEMETRY=0" in result.stderr and result.stderr.count("\n") == 1
