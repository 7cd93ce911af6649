"""`--session`, `--user`, `--tag` on the reading commands, `list --all`, `cost --group-by user|session|tag`.

The store is built row by row (real SQLite, half of it moved to the real Parquet
lake) and read by the real command line in a subprocess; expected figures are
added up by hand below.
"""

from __future__ import annotations

import json
import time

import pytest

from kagura.observability import EventStore
from kagura.observability.store.rows import execution_row, new_execution_id

NOW = time.time()

# name: (agent, user, session, tags, cost, parent)
RUNS = {
    "r1": ("chat", "ann", "s1", {"beta": True}, 1.0, None),
    "r2": ("chat", "ann", "s2", None, 2.0, None),
    "r3": ("search", "bob", "s2", {"beta": True, "team": "x"}, 4.0, None),
    "r4": ("search", None, None, None, 8.0, "r3"),  # nested under r3
}


@pytest.fixture
def people(kagura_home):
    kagura_home.mkdir(parents=True)
    store = EventStore(kagura_home / "telemetry.db", auto_compact=False)
    ids = {}
    for i, (name, (agent, user, session, tags, cost, parent)) in enumerate(RUNS.items()):
        run_id = new_execution_id(NOW - 600 + i * 60)
        ids[name] = run_id
        row = execution_row(
            id=run_id,
            trace_id=ids[parent] if parent else run_id,
            parent_id=ids[parent] if parent else None,
            agent_name=agent,
            started_at=NOW - 600 + i * 60,
            ended_at=NOW - 590 + i * 60,
            status="completed",
            user_id=user,
            session_id=session,
            tags=tags,
            total_cost=cost,
            llm_calls=1,
        )
        store.append(row, [])
        if name == "r2":
            store.compact()  # r1 and r2 in the lake, r3 and r4 in the tail
    store.close()
    return ids


def test_list_shows_top_level_runs_with_session_and_user_unless_all(people, cli):
    result = cli("monitor", "list")
    assert result.returncode == 0, result.stderr
    assert "Session" in result.stdout and "User" in result.stdout
    assert "ann" in result.stdout and "bob" in result.stdout
    listed = json.loads(cli("monitor", "list", "--json").stdout)
    assert {r["id"] for r in listed} == {people["r1"], people["r2"], people["r3"]}
    every = json.loads(cli("monitor", "list", "--all", "--json").stdout)
    assert len(every) == 4


def test_list_and_stats_narrow_to_a_user_session_or_tag(people, cli):
    ann = json.loads(cli("monitor", "list", "--user", "ann", "--json").stdout)
    assert [r["id"] for r in ann] == [people["r2"], people["r1"]]
    s2 = json.loads(cli("monitor", "stats", "--session", "s2", "--json").stdout)
    assert s2["total_executions"] == 2 and s2["total_cost"] == 6.0
    beta = json.loads(cli("monitor", "stats", "--tag", "beta", "--json").stdout)
    assert beta["total_cost"] == 5.0
    team = json.loads(cli("monitor", "stats", "--tag", "team=x", "--json").stdout)
    assert team["total_cost"] == 4.0


@pytest.mark.parametrize(
    ("group", "key", "want"),
    [
        ("user", "user_id", {"ann": 3.0, "bob": 4.0, None: 8.0}),
        ("session", "session_id", {"s1": 1.0, "s2": 6.0, None: 8.0}),
        ("tag", "tag", {"beta": 5.0, "team=x": 4.0}),
    ],
)
def test_cost_groups_by_user_session_and_tag(people, cli, group, key, want):
    result = cli("monitor", "cost", "--group-by", group, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {r[key]: r["cost"] for r in data["rows"]} == want
    table = cli("monitor", "cost", "--group-by", group)
    assert table.returncode == 0 and group.capitalize() in table.stdout


def test_cost_of_one_user_by_agent(people, cli):
    data = json.loads(cli("monitor", "cost", "--user", "ann", "--json").stdout)
    assert [(r["agent_name"], r["cost"]) for r in data["rows"]] == [("chat", 3.0)]


def test_an_empty_filter_value_is_one_line_and_exit_2(people, cli):
    result = cli("monitor", "list", "--user", " ")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Error: --user needs a value"]


def test_budget_per_user_lists_users_and_exits_1_when_one_is_over(people, cli):
    import datetime

    midnight = datetime.datetime.fromtimestamp(NOW).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    today = {"ann": 0.0, "bob": 0.0}
    for i, (_agent, user, _, _, cost, _) in enumerate(RUNS.values()):
        if user and NOW - 600 + i * 60 >= midnight.timestamp():
            today[user] += cost
    result = cli(
        "monitor", "budget", "--per-user", "--daily", "3.5", "--at", str(NOW + 1), "--json"
    )
    rows = {r["user_id"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"ann", "bob"}  # runs without a user are not a user
    assert rows["ann"]["today_cost"] == today["ann"] and rows["bob"]["today_cost"] == today["bob"]
    over = any(cost > 3.5 for cost in today.values())
    assert result.returncode == (1 if over else 0)
    assert rows["bob"]["daily_exceeded"] is (today["bob"] > 3.5)
    table = cli("monitor", "budget", "--per-user", "--daily", "100", "--at", str(NOW + 1))
    assert table.returncode == 0 and "Budget per User" in table.stdout
    assert "No user over budget" in table.stdout
    alone = cli("monitor", "budget", "--per-user")
    assert alone.returncode == 2 and "--per-user needs --daily or --monthly" in alone.stderr


def test_latency_errors_and_trend_narrow_to_a_user(people, cli):
    ann = json.loads(cli("monitor", "latency", "--user", "ann", "--json").stdout)
    assert [(r["agent_name"], r["runs"]) for r in ann] == [("chat", 2)]
    bob = json.loads(cli("monitor", "trend", "--user", "bob", "--since", "2d", "--json").stdout)
    assert sum(r["runs"] for r in bob["rows"]) == 1
    errors = cli("monitor", "errors", "--tag", "beta", "--json")
    assert errors.returncode == 0 and json.loads(errors.stdout) == []


def test_health_and_regressions_judge_one_users_runs(kagura_home, cli):
    """An agent that fails for one user only: unhealthy for that user, healthy for the other."""
    kagura_home.mkdir(parents=True)
    rows = []
    for i in range(20):
        for user, fails in (("ann", False), ("bob", True)):
            at = NOW - 3600 + i * 60 + (30 if fails else 0)
            rows.append(
                (
                    execution_row(
                        id=new_execution_id(at),
                        agent_name="support",
                        started_at=at,
                        ended_at=at + 1,
                        status="failed" if fails else "completed",
                        error="boom" if fails else None,
                        error_type="ValueError" if fails else None,
                        user_id=user,
                    ),
                    [],
                )
            )
    with EventStore(kagura_home / "telemetry.db", auto_compact=False) as store:
        store.append_many(rows)

    def status(*args):
        result = cli("monitor", "health", "--json", *args)
        return result.returncode, {r["agent_name"]: r["status"] for r in json.loads(result.stdout)}

    assert status("--user", "ann") == (0, {"support": "healthy"})
    assert status("--user", "bob") == (1, {"support": "unhealthy"})
    # all users: its last 20 runs are half failed, not above --unhealthy 0.5
    assert status() == (0, {"support": "degraded"})
    one = json.loads(cli("monitor", "health", "--json", "--user", "ann").stdout)[0]
    assert (one["considered"], one["failed"]) == (20, 0)
    # regressions compare one user's runs: ann's 20 (none failed) of the agent's 40
    for args, runs, rate in (([], 40, 0.5), (["--user", "ann"], 20, 0.0)):
        result = cli("monitor", "regressions", "--recent", "2h", "--json", *args)
        assert result.returncode == 0, result.stderr
        (row,) = [r for r in json.loads(result.stdout) if r["scope"] == "agent"]
        assert (row["recent_runs"], row["recent_failure_rate"]) == (runs, rate), args
