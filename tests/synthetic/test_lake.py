"""`kagura demo --synthetic` through the real CLI, checked by raw DuckDB over the Parquet it wrote."""

from __future__ import annotations

import json
import sqlite3
import stat
import time

import duckdb
import pytest
from cli_process import run_cli

RUNS = 6_000
DAYS = 3


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A store filled by the CLI (one subprocess for the module), with the time it ran."""
    home = tmp_path_factory.mktemp("synthetic-home")
    db = home / "lake-demo.db"
    before = time.time()
    result = run_cli(
        "demo",
        "--synthetic",
        "--runs",
        str(RUNS),
        "--days",
        str(DAYS),
        "--db",
        str(db),
        env={"KAGURA_HOME": str(home)},
        timeout=120,
    )
    after = time.time()
    assert result.returncode == 0, result.stderr
    return {"db": db, "home": home, "stdout": result.stdout, "before": before, "after": after}


def _raw(db):
    """A plain DuckDB connection with views over the files the manifest lists (read with sqlite3)."""
    con = sqlite3.connect(db)
    listed = con.execute("SELECT executions_path, events_path FROM segments").fetchall()
    con.close()
    lake = db.with_suffix("")
    raw = duckdb.connect()
    for i, name in enumerate(("executions", "events")):
        files = [str(lake / row[i]) for row in listed]
        raw.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files!r})")
    return raw, listed


def test_counts_and_sums_match_raw_parquet(written):
    raw, listed = _raw(written["db"])
    assert listed, "no segment listed"
    runs, first, last, cost, tokens, llm, tools, unpriced = raw.execute(
        "SELECT count(*), min(started_at), max(ended_at), sum(total_cost), sum(total_tokens),"
        " sum(llm_calls), sum(tool_calls), sum(unpriced_calls) FROM executions"
    ).fetchone()
    assert runs == RUNS
    assert written["before"] - DAYS * 86400 - 1 <= first
    assert last <= written["after"]
    # Each run has exactly 3 events, whose costs and tokens add up to the run's.
    per_run = raw.execute(
        "SELECT x.id, count(e.seq) AS n, x.total_cost, sum(e.cost) AS cost,"
        " x.total_tokens, sum(e.total_tokens) AS tokens,"
        " x.unpriced_calls, count(*) FILTER (WHERE e.type = 'llm_call' AND e.cost IS NULL) AS unpriced,"
        " x.tool_calls, count(*) FILTER (WHERE e.type = 'tool_call') AS tools"
        " FROM executions x LEFT JOIN events e ON e.execution_id = x.id GROUP BY ALL"
    ).fetchall()
    assert len(per_run) == RUNS
    for _id, n, run_cost, event_cost, run_tokens, event_tokens, u1, u2, t1, t2 in per_run:
        assert n == 3
        assert run_cost == event_cost  # both None when no call had a price
        assert run_tokens == event_tokens
        assert (u1, t1) == (u2, t2)
    assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 3 * RUNS
    assert unpriced > 0, "unknown prices are part of the mix"
    assert llm == 2 * RUNS and 0 < tools < RUNS

    # The store answers with the same totals.
    stats = run_cli("monitor", "--db", str(written["db"]), "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    got = json.loads(stats.stdout)
    assert got["total_executions"] == RUNS
    assert got["total_cost"] == pytest.approx(cost, rel=1e-12)
    assert (got["total_tokens"], got["llm_calls"], got["tool_calls"], got["unpriced_calls"]) == (
        tokens,
        llm,
        tools,
        unpriced,
    )
    assert f"Wrote {RUNS:,} synthetic runs" in written["stdout"]


def test_mix_of_agents_failures_and_nesting(written):
    raw, _ = _raw(written["db"])
    agents, failed, typed = raw.execute(
        "SELECT count(DISTINCT agent_name), count(*) FILTER (WHERE status = 'failed'),"
        " count(*) FILTER (WHERE status = 'failed' AND error_type IS NOT NULL AND error IS NOT NULL)"
        " FROM executions"
    ).fetchone()
    assert agents >= 15
    assert 0.02 * RUNS < failed < 0.12 * RUNS and typed == failed
    # Children point at a run of the same trace that exists; roots keep a NULL trace id in the lake.
    children, orphans, other_trace = raw.execute(
        "SELECT count(*), count(*) FILTER (WHERE p.id IS NULL),"
        " count(*) FILTER (WHERE coalesce(c.trace_id, c.id) <> coalesce(p.trace_id, p.id))"
        " FROM executions c LEFT JOIN executions p ON p.id = c.parent_id WHERE c.parent_id IS NOT NULL"
    ).fetchone()
    assert 0.05 * RUNS < children < 0.3 * RUNS
    assert orphans == 0 and other_trace == 0


def test_users_and_sessions(written):
    """Most root runs have a user, nested runs share their root's user and session, and a
    session belongs to one user; the store's per-user cost adds up to raw DuckDB's."""
    raw, _ = _raw(written["db"])
    roots, with_user, users, sessions = raw.execute(
        "SELECT count(*), count(user_id), count(DISTINCT user_id), count(DISTINCT session_id)"
        " FROM executions WHERE parent_id IS NULL"
    ).fetchone()
    assert 0.7 * roots < with_user < 0.9 * roots
    assert 100 < users <= 2000 and users < sessions < with_user
    mismatched = raw.execute(
        "SELECT count(*) FROM executions c JOIN executions r ON r.id = coalesce(c.trace_id, c.id)"
        " WHERE c.parent_id IS NOT NULL AND (c.user_id IS DISTINCT FROM r.user_id"
        " OR c.session_id IS DISTINCT FROM r.session_id)"
    ).fetchone()[0]
    assert mismatched == 0
    assert raw.execute(
        "SELECT count(*) FROM (SELECT session_id FROM executions WHERE session_id IS NOT NULL"
        " GROUP BY 1 HAVING count(DISTINCT user_id) > 1)"
    ).fetchone() == (0,)
    assert raw.execute(
        "SELECT count(*) FROM executions WHERE (user_id IS NULL) <> (session_id IS NULL)"
    ).fetchone() == (0,)
    expected = dict(
        raw.execute(
            "SELECT user_id, sum(total_cost) FROM executions WHERE user_id IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    result = run_cli("monitor", "--db", str(written["db"]), "cost", "--group-by", "user", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    got = {r["user_id"]: r["cost"] for r in rows if r["user_id"]}
    assert set(got) == set(expected)
    for user, cost in expected.items():
        # a user whose every call had no known price has no known cost, never $0
        assert got[user] == (None if cost is None else pytest.approx(cost, rel=1e-9)), user


def test_cost_by_user_shows_the_most_expensive_and_adds_up_the_rest(written):
    raw, _ = _raw(written["db"])
    costs = [
        c
        for (c,) in raw.execute(
            "SELECT sum(total_cost) AS c FROM executions GROUP BY user_id ORDER BY c DESC"
        ).fetchall()
    ]
    result = run_cli(
        "monitor",
        "--db",
        str(written["db"]),
        "cost",
        "--group-by",
        "user",
        "--limit",
        "10",
        env={"COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    more = [line for line in lines if "more users" in line]
    assert len(more) == 1 and f"{len(costs) - 10:,} more users" in more[0]
    body = lines[1 : lines.index(more[0])]  # after the header row
    assert len(body) == 10
    assert sum("(no user)" in line for line in body) == 1  # the batch runs: the biggest group
    rest = sum(c or 0.0 for c in costs[10:])
    shown = float(more[0].split("$")[1].split()[0].rstrip("+"))
    assert shown == pytest.approx(rest, rel=1e-3)


def test_files_are_private_and_doctor_is_happy(written):
    lake = written["db"].with_suffix("")
    for path in [lake, *lake.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {oct(mode)}"
    doctor = run_cli("monitor", "--db", str(written["db"]), "doctor", "--deep", "--json")
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["healthy"] and not report["orphans"]
    assert report["lake"]["executions"] == RUNS and report["lake"]["events"] == 3 * RUNS


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["cost"],
        ["cost", "--group-by", "date"],
        ["latency"],
        ["regressions"],
        ["health"],
        ["budget"],
        ["errors"],
        ["trend"],
        ["live", "--once"],
        ["sql", "cost_by_agent"],
    ],
)
def test_every_monitor_command_answers(written, command):
    result = run_cli("monitor", "--db", str(written["db"]), *command)
    # regressions exits 1 when it flags one: the drawn runs follow the clock's daily
    # shape, so whether the last day looks shifted depends on the hour the test runs.
    allowed = (0, 1) if command == ["regressions"] else (0,)
    assert result.returncode in allowed, result.stderr
    assert result.stderr == "" or result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_trace_of_a_nested_run(written):
    raw, _ = _raw(written["db"])
    child = raw.execute(
        "SELECT id FROM executions WHERE parent_id IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()[0]
    result = run_cli("monitor", "--db", str(written["db"]), "trace", child[:21])
    assert result.returncode == 0, result.stderr
    assert "Parent" in result.stdout and "Events Timeline (3 events)" in result.stdout


def test_bad_input_is_one_line(tmp_path):
    too_many = run_cli("demo", "--runs", "20000", "--db", str(tmp_path / "t.db"))
    assert too_many.returncode == 2
    assert "--synthetic" in too_many.stderr and "Traceback" not in too_many.stderr
    none = run_cli("demo", "--synthetic", "--runs", "0", "--db", str(tmp_path / "t.db"))
    assert none.returncode == 2 and "Traceback" not in none.stderr
    assert not (tmp_path / "t.db").exists()
