"""Scores: EventStore.score, append-only rows, the summary, score drops, and the CLI around them.

Real SQLite and DuckDB; the CLI runs in a subprocess. Expected means are worked
out by hand from the scores given.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from cli_process import run_cli

from kagura.observability import EventStore, TelemetryCollector
from kagura.observability.errors import StoreError


@pytest.fixture
def store(kagura_home):
    kagura_home.mkdir(parents=True)
    store = EventStore(kagura_home / "telemetry.db", auto_compact=False)
    yield store
    store.close()


def runs(store, n, agent="bot", model=None):
    collector = TelemetryCollector(store)
    ids = []
    for _ in range(n):
        with collector.recording(agent, model=model) as run:
            pass
        ids.append(run.id)
    return ids


def test_scores_are_append_only_rows_of_three_kinds(store):
    a, b = runs(store, 2)
    first = store.score(a, "helpful", True)
    assert first["kind"] == "boolean" and first["value"] is True
    store.score(a[:25], "helpful", False, comment="on a second look")
    store.score(b, "accuracy", 0.75)
    store.score(b, "tone", "friendly")
    con = sqlite3.connect(store.path)
    rows = con.execute(
        "SELECT execution_id, name, kind, value, label, comment FROM scores ORDER BY rev"
    ).fetchall()
    con.close()
    assert rows == [
        (a, "helpful", "boolean", 1.0, None, None),
        (a, "helpful", "boolean", 0.0, None, "on a second look"),
        (b, "accuracy", "numeric", 0.75, None, None),
        (b, "tone", "label", None, "friendly", None),
    ]
    got = store.get_execution(a)["scores"]
    assert [(s["name"], s["value"]) for s in got] == [("helpful", True), ("helpful", False)]


@pytest.mark.parametrize(
    ("value", "message"),
    [(float("nan"), "finite"), ("", "non-empty label"), (None, "a number, true/false")],
)
def test_bad_values_are_refused(store, value, message):
    (a,) = runs(store, 1)
    with pytest.raises(ValueError, match=message):
        store.score(a, "x", value)


def test_a_score_on_a_run_that_does_not_exist_is_refused(store):
    runs(store, 1)
    with pytest.raises(StoreError, match="No execution 'exec_0000'"):
        store.score("exec_0000", "helpful", True)
    con = sqlite3.connect(store.path)
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 0
    con.close()


def test_summary_uses_each_runs_newest_score_per_name(store):
    a1, a2, a3 = runs(store, 3, agent="a", model="m1")
    (b1,) = runs(store, 1, agent="b", model="m2")
    store.score(a1, "helpful", True)
    store.score(a1, "helpful", False)  # replaces the True above
    store.score(a2, "helpful", True)
    store.score(a3, "helpful", True)
    store.score(b1, "helpful", False)
    store.score(a1, "tone", "dry")
    store.score(a2, "tone", "warm")
    store.score(a3, "tone", "warm")
    rows = {(r["name"], r["group"]): r for r in store.score_summary("agent")}
    assert rows[("helpful", "a")]["scores"] == 3
    assert rows[("helpful", "a")]["mean"] == pytest.approx(2 / 3)  # false, true, true
    assert rows[("helpful", "b")]["mean"] == 0.0
    assert rows[("tone", "a")]["top_label"] == "warm" and rows[("tone", "a")]["mean"] is None
    by_model = {(r["name"], r["group"]): r["mean"] for r in store.score_summary("model")}
    assert by_model[("helpful", "m2")] == 0.0
    with pytest.raises(ValueError, match="group_by"):
        store.score_summary("user")


def test_score_regressions_list_a_mean_that_dropped(store):
    from kagura.observability.store.rows import execution_row, new_execution_id

    now = time.time()
    day = 86400.0
    # Baseline (2-6 days ago): accuracy 0.9, 0.8; recent (last day): 0.5, 0.4 -> drop 0.4.
    for at, value in [
        (now - 5 * day, 0.9),
        (now - 3 * day, 0.8),
        (now - 3600, 0.5),
        (now - 1800, 0.4),
    ]:
        run_id = new_execution_id(at)
        store.append(
            execution_row(
                id=run_id, agent_name="bot", started_at=at, ended_at=at + 1, status="completed"
            ),
            [],
        )
        store.score(run_id, "accuracy", value)
        store.score(run_id, "polite", True)  # steady: not listed
    rows = store.score_regressions(recent="1d", lookback="6d", min_drop=0.1, now=now)
    assert [(r["agent_name"], r["name"]) for r in rows] == [("bot", "accuracy")]
    assert rows[0]["baseline_mean"] == pytest.approx(0.85)
    assert rows[0]["recent_mean"] == pytest.approx(0.45)
    assert rows[0]["drop"] == pytest.approx(0.4)
    assert store.score_regressions(recent="1d", lookback="6d", min_drop=0.5, now=now) == []


def test_cli_score_trace_scores_and_regressions(store):
    a, b = runs(store, 2)
    scored = run_cli("monitor", "score", a[:25], "helpful", "yes", "--comment", "clear answer")
    assert scored.returncode == 0, scored.stderr
    assert f"Scored {a}: helpful = true (boolean)" in scored.stdout
    assert run_cli("monitor", "score", b, "accuracy", "0.5", "--json").returncode == 0
    trace = run_cli("monitor", "trace", a)
    assert "Scores:" in trace.stdout and "helpful = true" in trace.stdout
    assert "clear answer" in trace.stdout
    tree = json.loads(run_cli("monitor", "trace", a, "--json").stdout)
    assert tree["scores"][0]["value"] is True and tree["scores"][0]["comment"] == "clear answer"
    summary = json.loads(run_cli("monitor", "scores", "--json").stdout)
    assert {(r["name"], r["mean"]) for r in summary} == {("helpful", 1.0), ("accuracy", 0.5)}
    table = run_cli("monitor", "scores", "--group-by", "date")
    assert table.returncode == 0 and "Scores by Date" in table.stdout
    drops = run_cli("monitor", "regressions", "--scores", "--json")
    assert drops.returncode == 0 and json.loads(drops.stdout) == []


def test_cli_refuses_unknown_runs_and_bad_values_in_one_line(store):
    runs(store, 1)
    missing = run_cli("monitor", "score", "exec_0000", "helpful", "1")
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
    assert missing.stderr.startswith("Error: No execution 'exec_0000'")
    bad = run_cli("monitor", "score", "exec_0000", "helpful", "nan")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: a score must be a finite number")


@pytest.mark.parametrize("compacted", [True, False], ids=["lake", "tail"])
def test_prune_takes_a_runs_scores_with_it_and_clear_all_takes_every_score(kagura_home, compacted):
    """A pruned run's scores (comments included) leave the store's files; a kept run's stay."""
    kagura_home.mkdir(parents=True)
    path = kagura_home / "telemetry.db"
    store = EventStore(path, auto_compact=False)
    old, new = runs(store, 2)
    con = sqlite3.connect(path)
    with con:
        # the first run started 10 days ago, the second now
        con.execute("UPDATE executions SET started_at = started_at - 864000 WHERE id = ?", (old,))
    con.close()
    if compacted:
        store.compact()
    store.score(old, "helpful", False, comment="forgotten-remark-7f3a")
    store.score(new, "helpful", True, comment="kept-remark-1c9e")
    result = store.prune("5d")
    assert result["deleted"] == 1
    assert store.get_scores(old) == []
    assert [s["comment"] for s in store.get_scores(new)] == ["kept-remark-1c9e"]
    store.close()
    raw = b"".join(p.read_bytes() for p in kagura_home.rglob("*") if p.is_file())
    assert b"forgotten-remark-7f3a" not in raw
    assert b"kept-remark-1c9e" in raw

    with EventStore(path, auto_compact=False) as store:
        store.clear_all()
        assert store.get_scores(new) == []
        con = sqlite3.connect(path)
        assert con.execute("SELECT count(*) FROM scores").fetchone() == (0,)
        con.close()
