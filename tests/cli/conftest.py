"""Stores for the CLI tests: a small hand-built one (numbers checked by hand) and the fixture sample.

Every CLI test runs the real entry point in a subprocess (`python -m kagura.cli`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_cli

from kagura.observability.eventstore import EventStore
from kagura.observability.store.rows import (
    event_row,
    execution_row,
    new_execution_id,
    totals_from_events,
)
from kagura.synthetic import fixtures


@pytest.fixture
def cli():
    """Run the `kagura` command line in a subprocess."""
    return run_cli


@dataclass
class SmallStore:
    """The hand-built store: its path, rows by name, and the time it was made."""

    path: Path
    now: float
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def settled(self) -> list[dict[str, Any]]:
        return [r for r in self.rows.values() if r["status"] != "running"]


def _llm(
    model_name: str, at: float, tokens: tuple[int, int], cost: float | None, duration: float
) -> dict:
    return {
        "type": "llm_call",
        "at": at,
        "name": model_name,
        "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1],
        "cost": cost,
        "duration": duration,
    }


# name: (agent, seconds before now, duration, status, error_type, error, parent, events)
# Event "at" is seconds after the run's start.
SMALL_RUNS: dict[str, tuple] = {
    "t1": (
        "translator",
        10,
        0.52,
        "completed",
        None,
        None,
        None,
        [
            _llm("gpt-4o-mini", 0.0, (60, 25), 0.0003, 0.48),
            {"type": "memory_operation", "at": 0.48, "name": "store", "duration": 0.02},
        ],
    ),
    "t2": (
        "translator",
        3_600,
        0.61,
        "completed",
        None,
        None,
        None,
        [_llm("gpt-4o-mini", 0.0, (60, 30), 0.00031, 0.6)],
    ),
    "t3": (
        "translator",
        2 * 86_400 + 100,
        0.55,
        "completed",
        None,
        None,
        None,
        [_llm("gpt-4o-mini", 0.0, (50, 30), 0.00029, 0.5)],
    ),
    "c1": (
        "chatbot",
        200,
        1.23,
        "completed",
        None,
        None,
        None,
        [
            _llm("gpt-4o", 0.0, (500, 200), 0.0012, 0.5),
            {"type": "tool_call", "at": 0.5, "name": "web_search", "duration": 0.3},
        ],
    ),
    "c2": (
        "chatbot",
        300,
        0.9,
        "failed",
        "ValueError",
        "bad input: empty message",
        None,
        [_llm("gpt-4o", 0.0, (80, 20), 0.0001, 0.4)],
    ),
    "r1": (
        "researcher",
        400,
        2.11,
        "failed",
        "TimeoutError",
        "search timed out after 2s",
        None,
        [_llm("gpt-4o-mini", 0.0, (400, 100), 0.0008, 1.0)],
    ),
    "r2": (
        "researcher",
        500,
        3.0,
        "completed",
        None,
        None,
        None,
        [
            _llm("gpt-4o-mini", 0.0, (300, 100), 0.0005, 0.6),
            {"type": "tool_call", "at": 0.6, "name": "fetch_url", "duration": 0.2},
        ],
    ),
    "s1": (
        "summarizer",
        499,
        1.5,
        "completed",
        None,
        None,
        "r2",
        [_llm("gpt-4o-mini", 0.05, (250, 50), 0.00042, 1.4)],
    ),
    "u1": (
        "local_agent",
        600,
        0.4,
        "completed",
        None,
        None,
        None,
        [_llm("local/llama", 0.0, (40, 10), None, 0.3)],
    ),
}


def build_small(path: Path) -> SmallStore:
    """Write the hand-built runs (plus one still running, by this process) to the store at `path`."""
    now = time.time()
    small = SmallStore(path=path, now=now)
    store = EventStore(path)
    ids = {name: new_execution_id(now - spec[1]) for name, spec in SMALL_RUNS.items()}
    for name, (
        agent,
        ago,
        duration,
        status,
        error_type,
        error,
        parent,
        specs,
    ) in SMALL_RUNS.items():
        started = now - ago
        events = []
        for seq, spec in enumerate(specs):
            fields = {k: v for k, v in spec.items() if k not in ("type", "at")}
            events.append(event_row(ids[name], seq, spec["type"], started + spec["at"], **fields))
        row = execution_row(
            id=ids[name],
            trace_id=ids[parent] if parent else ids[name],
            parent_id=ids[parent] if parent else None,
            agent_name=agent,
            started_at=started,
            ended_at=started + duration,
            duration=duration,
            status=status,
            error=error,
            error_type=error_type,
            kwargs={"text": f"input of {name}"},
            model=specs[0]["name"],
            **totals_from_events(events),
        )
        store.append(row, events)
        small.rows[name] = row
        small.events[name] = events
    running = execution_row(
        id=new_execution_id(now - 5),
        agent_name="chatbot",
        started_at=now - 5,
        status="running",
        kwargs={"message": "still thinking"},
    )
    store.append(running)
    small.rows["live"] = running
    small.events["live"] = []
    store.close()
    return small


@pytest.fixture
def small(kagura_home) -> SmallStore:
    """The hand-built store at the default location ($KAGURA_HOME/telemetry.db)."""
    return build_small(kagura_home / "telemetry.db")


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    """A store holding the checked-in fixture sample (2,000 runs over 90 days, ending now)."""
    path = tmp_path_factory.mktemp("sample") / "telemetry.db"
    store = EventStore(path, auto_compact=False)
    store.append_many(fixtures.load_sample())
    store.close()
    return path


@pytest.fixture(scope="module")
def sample_pairs(sample_db) -> list[tuple[dict, list[dict]]]:
    """The rows of the sample store, read back independently of the CLI (with sqlite3)."""
    import sqlite3

    con = sqlite3.connect(sample_db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM executions")]
    con.close()
    return rows
