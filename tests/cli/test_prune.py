"""`kagura monitor prune`: no cut-off that selects everything, the plan first, asked or --yes.

The store: 4 runs on the day 40 days ago, 2 runs 20 days ago (2 events each),
3 runs in the last hour. Every count below is from that layout.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.store.rows import event_row, execution_row, new_execution_id

DAY = 86400.0


@pytest.fixture
def store_db(tmp_path) -> Path:
    db = tmp_path / "telemetry.db"
    now = time.time()
    day40 = (now - 40 * DAY) // DAY * DAY + DAY / 2  # noon UTC, 40 days ago

    def run(at: float, events: int = 0) -> tuple[dict, list[dict]]:
        row = execution_row(
            id=new_execution_id(at=at),
            agent_name="a",
            started_at=at,
            ended_at=at + 1,
            duration=1.0,
            status="completed",
        )
        return row, [event_row(row["id"], i, "llm_call", at, name="m") for i in range(events)]

    with EventStore(db, auto_compact=False) as store:
        store.append_many([run(day40 + i) for i in range(4)])
        store.compact()
        store.append_many([run(now - 20 * DAY + i, events=2) for i in range(2)])
        store.append_many([run(now - 60 * (i + 1)) for i in range(3)])
    return db


def total(db: Path) -> int:
    with EventStore(db) as store:
        return store.get_summary_stats()["total_executions"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0d", "positive"),
        ("0min", "positive"),
        ("6m", "ambiguous"),
        ("-5d", "not a time"),
        ("2999-01-01", "not in the past"),
        ("tomorrow", "not a time"),
    ],
)
def test_cutoffs_that_select_everything_or_mean_two_things_are_refused(
    store_db, cli, value, reason
):
    result = cli("monitor", "prune", "--older-than", value, "--yes", "--db", str(store_db))
    assert result.returncode == 2, result.stdout
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert total(store_db) == 9


def test_dry_run_prints_the_plan_and_deletes_nothing(store_db, cli):
    result = cli(
        "monitor", "prune", "--older-than", "30d", "--dry-run", "--json", "--db", str(store_db)
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert (plan["runs"], plan["events"], plan["days"]) == (4, 0, 1)
    assert plan["lake_bytes"] > 0
    text = cli("monitor", "prune", "--older-than", "10d", "--dry-run", "--db", str(store_db))
    assert text.stdout.startswith("Would delete 6 runs (4 events) over 2 day(s)")
    assert total(store_db) == 9


def test_without_a_terminal_it_needs_yes(store_db, cli):
    result = cli("monitor", "prune", "--older-than", "10d", "--db", str(store_db))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "pass --yes" in result.stderr
    )
    assert "6 runs" in result.stderr
    assert total(store_db) == 9
    done = cli("monitor", "prune", "--older-than", "10d", "--yes", "--json", "--db", str(store_db))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == 6
    assert total(store_db) == 3


def test_nothing_to_delete_asks_nothing(store_db, cli):
    result = cli("monitor", "prune", "--older-than", "90d", "--db", str(store_db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Nothing to delete: no run started before")


def _on_terminal(db: Path, answer: str) -> tuple[int, str]:
    """Run prune on a pseudo-terminal, answer the question, return (exit code, what it printed)."""
    main, child = pty.openpty()
    env = dict(os.environ, COLUMNS="200", LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kagura.cli",
            "monitor",
            "prune",
            "--older-than",
            "10d",
            "--db",
            str(db),
        ],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(main, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    os.close(main)
    return proc.wait(timeout=30), seen.decode(errors="replace")


def test_on_a_terminal_it_shows_the_plan_then_asks(store_db):
    code, out = _on_terminal(store_db, "n")
    assert code == 1
    assert out.index("Will delete 6 runs") < out.index("[y/N]")
    assert "Nothing deleted." in out
    assert total(store_db) == 9
    code, out = _on_terminal(store_db, "y")
    assert code == 0, out
    assert "Deleted 6 runs" in out
    assert total(store_db) == 3


def test_the_python_api_refuses_the_same_cutoffs(store_db):
    with EventStore(store_db) as store:
        for value in ("0d", "6m", timedelta(0), time.time() + 10):
            with pytest.raises(ValueError):
                store.prune(value)
        assert store.prune_plan("10d")["runs"] == 6
        assert store.prune("10d")["deleted"] == 6
        assert store.get_summary_stats()["total_executions"] == 3
