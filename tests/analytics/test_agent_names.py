"""sql/agent_names.sql: every agent with its run count and newest start, by name."""

from __future__ import annotations

from analytics_rows import run

T0 = 1_749_729_600.0


def test_agent_names_with_counts_and_last_start(make_store):
    store = make_store(
        [
            run("b", T0),
            run("a", T0 + 5),
            run("b", T0 + 9, status="running"),
            run("a", T0 - 100, status="failed", error="x"),
        ]
    )
    assert store.agent_names() == ["a", "b"]
    rows = store.run("agent_names").rows()
    assert rows == [
        {"agent_name": "a", "runs": 2, "last_started_at": T0 + 5},
        {"agent_name": "b", "runs": 2, "last_started_at": T0 + 9},
    ]


def test_agent_names_of_an_empty_store(make_store):
    assert make_store().agent_names() == []
