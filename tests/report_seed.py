"""A small store for the HTML report's tests, with every number the page shows known by hand.

Runs sit at local noon of days 1, 3 and 8 before today (three distinct days with runs in
the last 30), plus one run 40 days back that a 30-day report leaves out. One agent name
is markup that would run script if the page pasted it as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from store_rows import run

from kagura.observability.eventstore import EventStore

# Markup in user data: the page must show it as text and run none of it.
HOSTILE = '</script><img src=x onerror="window.__pwned=1"><b>bold</b>'
EVE = "<i>eve</i>"


def noon(days_ago: int) -> float:
    """Local noon `days_ago` days before today, in epoch seconds."""
    day = date.today() - timedelta(days=days_ago)
    return datetime.combine(day, time(12, 0)).timestamp()


@dataclass
class Seeded:
    """The seeded store's path and what the tests expect of it, computed by hand."""

    path: Path
    # date (ISO) -> spend of the runs started that day (costs of their LLM calls)
    cost_by_day: dict[str, float] = field(default_factory=dict)
    # agent -> spend over the window
    cost_by_agent: dict[str, float] = field(default_factory=dict)
    # trace id -> rows its waterfall draws (runs + events), newest trace first
    traces: dict[str, int] = field(default_factory=dict)
    # session or user -> (runs, spend), costliest first
    sessions: dict[str, tuple[int, float]] = field(default_factory=dict)
    users: dict[str, tuple[int, float]] = field(default_factory=dict)
    scores: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    child_agent: str = "beta"
    nested_trace: str = ""
    hostile_trace: str = ""


def seed(path: Path) -> Seeded:
    """Write the report's test store at `path` and return what it holds."""
    expected = Seeded(path)
    rows: list[tuple[dict, list[dict]]] = []
    day1, day3, day8 = noon(1), noon(3), noon(8)

    # Day 8: one beta run, $0.005, 2 LLM calls.
    rows.append(run("beta", day8, duration=2.0, costs=(0.002, 0.003)))
    # Day 3: one alpha run, $0.030, one LLM call and one tool call.
    rows.append(run("alpha", day3, duration=4.0, costs=(0.030,), tools=1))
    # Day 1: an alpha run ($0.010) with a nested beta run ($0.004) that makes 2 tool calls.
    root = run("alpha", day1, duration=6.0, costs=(0.010,))
    child = run("beta", day1 + 1.0, duration=3.0, costs=(0.004,), tools=2, parent=root[0])
    rows += [root, child]
    # Day 1, later: the hostile agent fails ($0.001, its error holds markup as well).
    hostile = run(
        HOSTILE,
        day1 + 3600,
        duration=0.5,
        costs=(0.001,),
        status="failed",
        error=HOSTILE + " & more",
    )
    rows.append(hostile)
    # 40 days back: outside a 30-day window.
    rows.append(run("alpha", noon(40), costs=(1.0,)))
    # Sessions and users, as kagura.context sets them (a nested run inherits its root's).
    people = [("s-1", "ana"), ("s-2", "bo"), ("s-1", "ana"), ("s-1", "ana"), (None, EVE)]
    for (execution, _), (session, user) in zip(rows, people, strict=False):
        execution["session_id"], execution["user_id"] = session, user

    store = EventStore(path)
    for execution, events in rows:
        store.append(execution, events)
    # Scores: quality 0.8 for alpha on day 3, 0.4 then 0.6 for beta on day 8 (the newest counts),
    # and a passed check on the nested trace's root.
    store.score(rows[1][0]["id"], "quality", 0.8)
    store.score(rows[0][0]["id"], "quality", 0.4)
    store.score(rows[0][0]["id"], "quality", 0.6, comment="second look")
    store.score(root[0]["id"], "ok", True)
    store.close()

    def iso(at: float) -> str:
        return datetime.fromtimestamp(at).date().isoformat()

    expected.cost_by_day = {iso(day8): 0.005, iso(day3): 0.030, iso(day1): 0.010 + 0.004 + 0.001}
    expected.cost_by_agent = {"alpha": 0.040, "beta": 0.009, HOSTILE: 0.001}
    # Newest first: hostile (1 run + 1 event), the nested trace (2 runs + 1 + 3 events),
    # alpha on day 3 (1 run + 2 events), beta on day 8 (1 run + 2 events).
    expected.traces = {
        hostile[0]["trace_id"]: 2,
        root[0]["trace_id"]: 6,
        rows[1][0]["trace_id"]: 3,
        rows[0][0]["trace_id"]: 3,
    }
    # Costliest first; the hostile run has no session (its $0.001 is the "no session" row).
    expected.sessions = {"s-2": (1, 0.030), "s-1": (3, 0.019)}
    expected.users = {"bo": (1, 0.030), "ana": (3, 0.019), EVE: (1, 0.001)}
    # (score name, agent) -> (scores counted, mean)
    expected.scores = {
        ("ok", "alpha"): (1, 1.0),
        ("quality", "alpha"): (1, 0.8),
        ("quality", "beta"): (1, 0.6),
    }
    expected.nested_trace = root[0]["trace_id"]
    expected.hostile_trace = hostile[0]["trace_id"]
    return expected
