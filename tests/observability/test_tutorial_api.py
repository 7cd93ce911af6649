"""The tutorial's Python snippets (Steps 7, 9, 10; Use Cases 1-3; Patterns 1-3), run as written.

The snippets are copied verbatim from the tutorial. The store is filled by the
fixture generator, and every number the snippets print or return is checked
against a computation over the generator's rows that does not use the store.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import time
from collections import Counter, defaultdict

import pytest

from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures

STEP_7 = """
from pathlib import Path
from kagura.observability import EventStore, Dashboard

# Load event store
store = EventStore(Path.home() / ".kagura" / "telemetry.db")

# Get recent executions
executions = store.get_executions(agent_name="translator", limit=10)

for exec in executions:
    print(f"{exec['agent_name']}: {exec['status']} - {exec['duration']:.2f}s")

# Get statistics
stats = store.get_summary_stats(agent_name="translator")
print(f"Total: {stats['total_executions']}")
print(f"Avg Duration: {stats['avg_duration']:.2f}s")
"""

STEP_9 = """
import time
from kagura.observability import EventStore

store = EventStore()

# Get executions from last 24 hours
since = time.time() - 86400  # 24 hours ago
recent = store.get_executions(since=since)

# Get failed executions only
failed = store.get_executions(status="failed")

# Get specific agent's executions
agent_execs = store.get_executions(agent_name="translator", limit=50)

# Get single execution
execution = store.get_execution("exec_abc123")
if execution:
    print(f"Duration: {execution['duration']:.2f}s")
    print(f"Status: {execution['status']}")
    print(f"Error: {execution.get('error')}")
"""

STEP_10 = """
import time
from kagura.observability import EventStore

store = EventStore()

# Delete executions older than 30 days
thirty_days_ago = time.time() - (30 * 86400)
deleted = store.delete_old_executions(older_than=thirty_days_ago)
print(f"Deleted {deleted} old executions")

# Clear all data (use with caution!)
# store.clear_all()
"""

USE_CASE_1 = """
store = EventStore()

# Get last 100 executions
executions = store.get_executions(limit=100)

# Calculate average duration per agent
from collections import defaultdict

agent_durations = defaultdict(list)
for exec in executions:
    agent_durations[exec['agent_name']].append(exec['duration'])

for agent, durations in agent_durations.items():
    avg = sum(durations) / len(durations)
    print(f"{agent}: {avg:.2f}s average")
"""

USE_CASE_2 = """
store = EventStore()

# Get today's executions
import time
today_start = time.time() - 86400
executions = store.get_executions(since=today_start)

# Calculate total cost
total_cost = sum(
    exec.get('metrics', {}).get('total_cost', 0.0)
    for exec in executions
)

# Alert if over budget
DAILY_BUDGET = 1.0  # $1.00
if total_cost > DAILY_BUDGET:
    print(f"⚠️  ALERT: Daily cost ${total_cost:.2f} exceeds budget ${DAILY_BUDGET:.2f}")
else:
    print(f"✓ Cost ${total_cost:.2f} within budget ${DAILY_BUDGET:.2f}")
"""

USE_CASE_3 = """
store = EventStore()

# Get all failed executions
failed = store.get_executions(status="failed", limit=100)

# Group by error type
from collections import Counter

error_types = Counter(
    exec.get('error', 'Unknown error')
    for exec in failed
)

print("Top 5 Error Types:")
for error, count in error_types.most_common(5):
    print(f"  {count}x: {error}")
"""

PATTERNS = '''
def health_check(agent_name: str) -> dict:
    """Check agent health."""
    store = EventStore()
    recent = store.get_executions(agent_name=agent_name, limit=20)

    if not recent:
        return {"status": "unknown", "reason": "no executions"}

    failed = sum(1 for e in recent if e['status'] == 'failed')
    failure_rate = failed / len(recent)

    if failure_rate > 0.5:
        return {"status": "unhealthy", "failure_rate": failure_rate}
    elif failure_rate > 0.2:
        return {"status": "degraded", "failure_rate": failure_rate}
    else:
        return {"status": "healthy", "failure_rate": failure_rate}

def detect_regression(agent_name: str, threshold: float = 1.5) -> bool:
    """Detect performance regression."""
    store = EventStore()

    # Get baseline (last 100 executions)
    baseline = store.get_executions(agent_name=agent_name, limit=100)
    baseline_avg = sum(e['duration'] for e in baseline) / len(baseline)

    # Get recent (last 10 executions)
    recent = store.get_executions(agent_name=agent_name, limit=10)
    recent_avg = sum(e['duration'] for e in recent) / len(recent)

    # Check if recent is significantly slower
    return recent_avg > baseline_avg * threshold

def get_cost_breakdown(since: float) -> dict:
    """Get cost breakdown by agent."""
    store = EventStore()
    executions = store.get_executions(since=since, limit=10000)

    breakdown = {}
    for exec in executions:
        agent = exec['agent_name']
        cost = exec.get('metrics', {}).get('total_cost', 0.0)

        if agent not in breakdown:
            breakdown[agent] = {"cost": 0.0, "calls": 0}

        breakdown[agent]["cost"] += cost
        breakdown[agent]["calls"] += 1

    return breakdown
'''


@pytest.fixture(scope="module")
def built_world(tmp_path_factory):
    """A .kagura folder whose store holds 1,500 generated runs over the last 40 days, and the runs."""
    folder = tmp_path_factory.mktemp("world") / ".kagura"
    end = time.time() - 120
    pairs = list(fixtures.generate(1500, seed=11, days=40, end=end))
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    half = len(pairs) // 2
    store.append_many(pairs[:half])
    store.compact()  # half in the lake, half in the tail
    store.append_many(pairs[half:])
    store.close()
    return folder, [row for row, _ in pairs]


@pytest.fixture
def world(built_world, tmp_path, monkeypatch):
    """A home of this test's own (a copy of the built store: a snippet may delete runs)."""
    folder, rows = built_world
    shutil.copytree(folder, tmp_path / ".kagura")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGURA_HOME", str(tmp_path / ".kagura"))
    return rows


def run_snippet(code: str, namespace: dict | None = None) -> tuple[str, dict]:
    namespace = {"EventStore": EventStore} if namespace is None else namespace
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<tutorial>", "exec"), namespace)
    return out.getvalue(), namespace


def newest(rows, limit, **match):
    chosen = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return sorted(chosen, key=lambda r: (r["started_at"], r["id"]), reverse=True)[:limit]


def test_step_7_programmatic_access(world):
    out, _ = run_snippet(STEP_7, {})
    translator = [r for r in world if r["agent_name"] == "translator"]
    expected = [
        f"translator: {r['status']} - {r['duration']:.2f}s"
        for r in newest(world, 10, agent_name="translator")
    ]
    expected += [
        f"Total: {len(translator)}",
        f"Avg Duration: {statistics.fmean(r['duration'] for r in translator):.2f}s",
    ]
    assert out.splitlines() == expected


def test_step_9_filtering_and_querying(world):
    out, ns = run_snippet(STEP_9, {})
    since = ns["since"]
    last_day = [r for r in world if r["started_at"] >= since]
    assert [e["id"] for e in ns["recent"]] == [r["id"] for r in newest(last_day, 100)]
    assert [e["id"] for e in ns["failed"]] == [r["id"] for r in newest(world, 100, status="failed")]
    assert [e["id"] for e in ns["agent_execs"]] == [
        r["id"] for r in newest(world, 50, agent_name="translator")
    ]
    assert ns["execution"] is None and out == ""


def test_step_10_cleanup(world):
    out, ns = run_snippet(STEP_10, {})
    old = sum(1 for r in world if r["started_at"] < ns["thirty_days_ago"])
    assert old > 0
    assert out == f"Deleted {old} old executions\n"
    assert EventStore().get_summary_stats()["total_executions"] == len(world) - old


def test_use_case_1_average_duration_per_agent(world):
    out, _ = run_snippet(USE_CASE_1)
    durations = defaultdict(list)
    for r in newest(world, 100):
        durations[r["agent_name"]].append(r["duration"])
    expected = [f"{agent}: {sum(d) / len(d):.2f}s average" for agent, d in durations.items()]
    assert out.splitlines() == expected


def test_use_case_2_cost_budget(world):
    out, ns = run_snippet(USE_CASE_2)
    today = [r for r in world if r["started_at"] >= ns["today_start"]]
    cost = sum(r["total_cost"] or 0.0 for r in newest(today, 100))
    assert ns["total_cost"] == pytest.approx(cost)
    word = "ALERT" if cost > 1.0 else "within budget"
    assert word in out and f"${cost:.2f}" in out


def test_use_case_3_error_tracking(world):
    out, _ = run_snippet(USE_CASE_3)
    counts = Counter(r["error"] for r in newest(world, 100, status="failed"))
    expected = ["Top 5 Error Types:"] + [f"  {n}x: {error}" for error, n in counts.most_common(5)]
    assert out.splitlines() == expected
    assert len(counts) > 1


def test_patterns_health_regression_cost(world):
    _, ns = run_snippet(PATTERNS)
    for agent in ("translator", "chatbot", "researcher"):
        recent = newest(world, 20, agent_name=agent)
        rate = sum(r["status"] == "failed" for r in recent) / len(recent)
        status = "unhealthy" if rate > 0.5 else "degraded" if rate > 0.2 else "healthy"
        assert ns["health_check"](agent) == {"status": status, "failure_rate": rate}
        baseline = newest(world, 100, agent_name=agent)
        latest = newest(world, 10, agent_name=agent)
        slower = statistics.fmean(r["duration"] for r in latest) > 1.5 * statistics.fmean(
            r["duration"] for r in baseline
        )
        assert ns["detect_regression"](agent) is slower
    assert ns["health_check"]("nobody") == {"status": "unknown", "reason": "no executions"}
    since = time.time() - 14 * 86400
    breakdown = ns["get_cost_breakdown"](since)
    expected: dict = {}
    for r in world:
        if r["started_at"] >= since:
            item = expected.setdefault(r["agent_name"], {"cost": 0.0, "calls": 0})
            item["cost"] += r["total_cost"] or 0.0
            item["calls"] += 1
    assert {a: v["calls"] for a, v in breakdown.items()} == {
        a: v["calls"] for a, v in expected.items()
    }
    for agent, item in expected.items():
        assert breakdown[agent]["cost"] == pytest.approx(item["cost"])
