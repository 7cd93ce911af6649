"""Bad input, property-based: any unicode, huge and cyclic arguments, bad numbers, odd times, hostile ids.

The store either refuses a value with a ValueError that names the field, or
stores it so that it reads back as given, before and after compaction. The CLI
answers hostile arguments with an exit code and at most one line on stderr,
never a traceback, and never changes the store (values are bound, not pasted).
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kagura.cli import app
from kagura.observability import EventStore, TelemetryCollector
from kagura.observability.store.rows import (
    MAX_TIME,
    MIN_TIME,
    event_row,
    execution_row,
    new_execution_id,
)

from . import harness
from .conftest import LONG, assert_one_line_error, cli

SCALE = 10 if LONG else 1  # KAGURA_LONG_TESTS=1 tries ten times as many inputs

FAST = settings(
    max_examples=40 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NOW = time.time()
HOSTILE = [
    "'",
    '"',
    "%",
    "_",
    "*",
    "?",
    "[",
    "]",
    ";",
    "--",
    "\\",
    "' OR '1'='1",
    "x'); DELETE FROM executions; --",
    "'; DROP TABLE executions; --",
    "$agent",
    "$1",
    "?",
    "%s %d %n",
    "exec_%",
    "exec_*",
    "SELECT * FROM executions",
    "\x00",
    "a\nb",
    "日本語",
    "🙂",
    " ",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = EventStore(tmp_path_factory.mktemp("bad-input") / "telemetry.db", auto_compact=False)
    yield store
    store.close()


def row(**fields):
    started = fields.pop("started_at", NOW - 3600)
    plain_time = isinstance(started, float | int) and math.isfinite(started) and abs(started) < 1e12
    base = {
        "id": new_execution_id(at=started if plain_time else None),
        "agent_name": "a",
        "started_at": started,
        "status": "completed",
    }
    base.update(fields)
    return execution_row(**base)


# --- any unicode, any JSON ----------------------------------------------------------


@FAST
@given(
    agent=st.text(min_size=1, max_size=40),
    tags=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    kwargs=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    error=st.one_of(st.none(), st.text(max_size=60)),
)
def test_any_unicode_and_json_reads_back_as_given(store, agent, tags, kwargs, error):
    stored = row(agent_name=agent, tags=tags, kwargs=kwargs, error=error, status="failed")
    store.append(stored)
    back = store.get_execution(stored["id"])
    assert back["agent_name"] == agent
    assert back["tags"] == tags and back["kwargs"] == kwargs and back["error"] == error
    assert stored["id"] in {e["id"] for e in store.get_executions(agent_name=agent, limit=10_000)}
    ROUND_TRIP.append((stored["id"], agent, tags, kwargs, error))


ROUND_TRIP: list[tuple] = []


def test_the_same_values_read_back_from_parquet(store):
    assert ROUND_TRIP, "runs after the property test"
    assert store.compact()["executions"] >= len(ROUND_TRIP)
    for run_id, agent, tags, kwargs, error in ROUND_TRIP:
        back = store.get_execution(run_id)
        assert (back["agent_name"], back["tags"], back["kwargs"], back["error"]) == (
            agent,
            tags,
            kwargs,
            error,
        )


# --- sizes and shapes ---------------------------------------------------------------------


def test_a_10_mb_argument_is_stored_and_read_back(store):
    doc = "x" * (10 * 1024 * 1024)
    stored = row(kwargs={"doc": doc})
    store.append(stored)
    assert len(store.get_execution(stored["id"])["kwargs"]["doc"]) == len(doc)
    store.compact()
    assert len(store.get_execution(stored["id"])["kwargs"]["doc"]) == len(doc)


def test_the_agent_records_a_10_mb_argument_cut_down(db):
    collector = TelemetryCollector(EventStore(db, auto_compact=False))
    with collector.recording("reader", {"doc": "y" * (10 * 1024 * 1024)}) as run:
        pass
    assert collector.flush()
    stored = collector.store.get_execution(run.id)
    assert 0 < len(stored["kwargs"]["doc"]) <= 300 * 1024
    collector.store.close()


def test_cyclic_arguments_are_stored_with_the_cycle_marked(store):
    loop: dict = {"name": "loop"}
    loop["self"] = loop
    chain: list = [1]
    chain.append(chain)
    stored = row(kwargs={"loop": loop, "chain": chain})
    store.append(stored)
    back = store.get_execution(stored["id"])["kwargs"]
    assert back["loop"]["name"] == "loop" and isinstance(back["loop"]["self"], str)
    assert back["chain"][0] == 1 and isinstance(back["chain"][1], str)


def test_the_agent_records_deeply_nested_arguments(db):
    deep: list = []
    cur = deep
    for _ in range(5000):
        cur.append([])
        cur = cur[0]
    collector = TelemetryCollector(EventStore(db, auto_compact=False))
    with collector.recording("nester", {"deep": deep}) as run:
        pass
    assert collector.flush()
    assert collector.store.get_execution(run.id) is not None
    collector.store.close()


def test_deeply_nested_arguments_are_stored_or_refused_by_the_model(store):
    deep: list = []
    cur = deep
    for _ in range(5000):
        cur.append([])
        cur = cur[0]
    try:
        store.append(row(kwargs={"deep": deep}))
    except ValueError as exc:
        assert "kwargs" in str(exc)


def test_the_agent_records_arguments_with_lone_surrogates(db):
    collector = TelemetryCollector(EventStore(db, auto_compact=False))
    with collector.recording("files", {"name": "report-\udcff.txt"}) as run:
        pass
    assert collector.flush()
    assert collector.store.get_execution(run.id) is not None
    collector.store.close()


# --- numbers -----------------------------------------------------------------------------

BAD_NUMBERS = [math.nan, math.inf, -math.inf]


@FAST
@given(
    field=st.sampled_from(["total_cost", "duration", "ended_at", "started_at"]),
    value=st.one_of(st.sampled_from(BAD_NUMBERS), st.floats(max_value=-1e-9, allow_nan=False)),
)
def test_bad_execution_numbers_are_refused_naming_the_field(field, value):
    if field in ("ended_at", "started_at") and math.isfinite(value):
        return  # a negative time is a time (before 1970)
    with pytest.raises(ValueError, match=field):
        row(**{field: value})


@FAST
@given(
    field=st.sampled_from(["cost", "duration"]),
    value=st.one_of(st.sampled_from(BAD_NUMBERS), st.floats(max_value=-1e-9, allow_nan=False)),
)
def test_bad_event_numbers_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"event {field}"):
        event_row("exec_x", 0, "llm_call", NOW, **{field: value})


@FAST
@given(
    field=st.sampled_from(["total_tokens", "prompt_tokens", "llm_calls", "tool_calls"]),
    value=st.one_of(
        st.integers(max_value=-1), st.floats(allow_nan=False).filter(lambda v: not v.is_integer())
    ),
)
def test_bad_counts_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        row(**{field: value})


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_counts_too_big_for_sqlite_are_refused_naming_the_field(store, value):
    with pytest.raises(ValueError, match="total_tokens"):
        store.append(row(total_tokens=value))


# --- times -----------------------------------------------------------------------------------


def every_query_works(store, run_id) -> None:
    assert store.get_execution(run_id)["id"] == run_id
    store.get_summary_stats()
    store.get_executions(limit=5)
    store.cost_by_date()
    store.cost_by_agent()


TIMES: list[str] = []


@settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(started=st.floats(min_value=MIN_TIME, max_value=MAX_TIME))
def test_times_from_year_1_to_9999_are_stored_and_queried(store, started):
    stored = row(started_at=started, ended_at=min(started + 1.0, MAX_TIME))
    store.append(stored)
    TIMES.append(stored["id"])
    every_query_works(store, stored["id"])


def test_the_same_times_are_queried_from_parquet(store):
    assert TIMES, "runs after the property test"
    store.compact()
    for run_id in TIMES[:5] + TIMES[-5:]:
        every_query_works(store, run_id)


@pytest.mark.parametrize("started", [1e15, -1e15, 1.7e308, MAX_TIME + 1])
def test_times_beyond_year_9999_are_refused_or_harmless(db, started):
    store = EventStore(db, auto_compact=False)
    try:
        stored = row(started_at=started)
    except ValueError as exc:
        assert "started_at" in str(exc)
        return
    store.append(stored)
    every_query_works(store, stored["id"])
    store.compact()
    every_query_works(store, stored["id"])


# --- hostile ids and CLI arguments -------------------------------------------------------------

hostile = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=30))


KNOWN_IDS: set[str] = set()


@settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(run_id=hostile)
def test_any_id_is_found_exactly_and_prefixes_are_literal(store, run_id):
    assume(run_id.strip() == run_id and run_id)
    before = store.get_summary_stats()["total_executions"]
    if run_id not in KNOWN_IDS:
        store.append(row(id=run_id))
        KNOWN_IDS.add(run_id)
        before += 1
    assert store.get_execution(run_id)["id"] == run_id
    for probe in ("%", "*", run_id + "%"):
        try:
            found = store.get_execution(probe)
        except LookupError:
            continue  # an ambiguous prefix: fine, so long as it is a real prefix
        assert found is None or found["id"].startswith(probe)
    assert store.get_summary_stats()["total_executions"] == before


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """A small closed store for the CLI tests, and its ground truth."""
    db = tmp_path_factory.mktemp("cli") / "telemetry.db"
    import random

    rng = random.Random(11)
    truth = harness.Truth()
    store = EventStore(db, auto_compact=False)
    runs = [harness.new_run(rng, NOW - 5 * 86400, NOW - 60) for _ in range(40)]
    store.append_many([r.rows() for r in runs[:20]])
    store.compact()
    store.append_many([r.rows() for r in runs[20:]])
    truth.apply(runs)
    store.close()
    return db, truth


COMMANDS = [
    ["monitor", "list", "--agent", "{x}"],
    ["monitor", "list", "--status", "{x}"],
    ["monitor", "list", "--since", "{x}"],
    ["monitor", "list", "--limit", "{x}"],
    ["monitor", "stats", "--agent", "{x}"],
    ["monitor", "stats", "--until", "{x}"],
    ["monitor", "trace", "{x}"],
    ["monitor", "cost", "--group-by", "{x}"],
    ["monitor", "cost", "--agent", "{x}", "--since", "{x}"],
    ["monitor", "prune", "--older-than", "{x}", "--dry-run"],
]


@settings(max_examples=50 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(COMMANDS), value=hostile)
def test_hostile_cli_arguments_never_give_a_traceback(cli_store, command, value):
    db, _ = cli_store
    args = [value if part == "{x}" else part for part in command] + ["--db", str(db)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if result.exit_code == 1:
        assert len(lines) == 1, (args, result.stderr)
    elif result.exit_code == 2:  # click's usage block is allowed; one error line in it
        assert len([line for line in lines if line.startswith("Error")]) == 1, (args, lines)


def test_the_store_is_unchanged_by_hostile_arguments(cli_store):
    db, truth = cli_store
    for value in HOSTILE[:10]:
        for command in (COMMANDS[0], COMMANDS[6]):
            CliRunner().invoke(
                app, [value if p == "{x}" else p for p in command] + ["--db", str(db)]
            )
    harness.assert_exact(db, truth)


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "trace", "x'); DELETE FROM executions; --"],
        ["monitor", "list", "--agent", "'; DROP TABLE executions; --"],
        ["monitor", "stats", "--since", "1; DROP TABLE executions"],
        ["monitor", "list", "--limit", "-1"],
        ["monitor", "cost", "--group-by", "agent; DROP TABLE executions"],
    ],
)
def test_hostile_arguments_in_a_real_process(cli_store, args):
    db, truth = cli_store
    result = cli(*args, "--db", str(db))
    assert_one_line_error(result)
    harness.assert_exact(db, truth)
