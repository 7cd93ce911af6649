"""The telemetry generator: deterministic, valid rows, realistic proportions, real prices."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kagura.observability.store.rows import (
    EVENT_NAMES,
    EVENT_TYPES,
    EXECUTION_NAMES,
    event_row,
    execution_row,
    from_json,
    id_time_range,
    new_execution_id,
    totals_from_events,
)
from kagura.synthetic import fixtures

END = "2025-06-30T00:00:00+00:00"
END_TS = 1751241600.0  # 2025-06-30 00:00:00 UTC, by hand
DAY = 86400.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def price_map():
    """litellm's bundled price map, read by the test itself (the independent source of prices)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm.model_cost


@pytest.fixture(scope="module")
def prices(price_map):
    return fixtures.model_prices(price_map)


@pytest.fixture(scope="module")
def pairs(prices):
    return list(fixtures.generate(6_000, seed=11, end=END, prices=prices))


def executions_of(pairs):
    return [row for row, _ in pairs]


def test_same_seed_same_rows_and_another_seed_other_rows(prices):
    first = list(fixtures.generate(400, seed=5, end=END, prices=prices))
    again = list(fixtures.generate(400, seed=5, end=END, prices=prices))
    other = list(fixtures.generate(400, seed=6, end=END, prices=prices))
    assert first == again
    assert {r["id"] for r, _ in first}.isdisjoint({r["id"] for r, _ in other})


def test_without_prices_it_reads_litellm_and_gives_the_same_rows(prices):
    assert list(fixtures.generate(50, seed=2, end=END)) == list(
        fixtures.generate(50, seed=2, end=END, prices=prices)
    )


@pytest.mark.parametrize("n", [0, 1, 2, 7, 333])
def test_exactly_n_executions(prices, n):
    rows = list(fixtures.generate(n, seed=1, end=END, prices=prices))
    assert len(rows) == n
    ids = {r["id"] for r, _ in rows}
    # Truncating the last trace never leaves a child without its parent.
    assert all(r["parent_id"] in ids for r, _ in rows if r["parent_id"] is not None)


def test_rows_are_exactly_what_the_model_builds(pairs):
    for row, events in pairs:
        assert tuple(row) == EXECUTION_NAMES
        assert execution_row(**row) == row
        assert [e["seq"] for e in events] == list(range(len(events)))
        for event in events:
            assert tuple(event) == EVENT_NAMES
            assert event["execution_id"] == row["id"]
            assert event["type"] in EVENT_TYPES
            fields = {
                k: v
                for k, v in event.items()
                if k not in ("execution_id", "seq", "type", "started_at", "data")
            }
            data = from_json(event["data"], {})
            rebuilt = event_row(
                row["id"], event["seq"], event["type"], event["started_at"], data=data, **fields
            )
            assert rebuilt == event
            # Events happen inside their run.
            assert row["started_at"] <= event["started_at"]
            assert event["started_at"] + event["duration"] <= row["ended_at"] + 1e-6


def test_counters_add_up_the_events(pairs):
    for row, events in pairs:
        llm = [e for e in events if e["type"] == "llm_call"]
        priced = [e["cost"] for e in llm if e["cost"] is not None]
        assert row["llm_calls"] == len(llm)
        assert row["tool_calls"] == sum(e["type"] == "tool_call" for e in events)
        assert row["unpriced_calls"] == len(llm) - len(priced)
        assert row["prompt_tokens"] == sum(e["prompt_tokens"] or 0 for e in events)
        assert row["completion_tokens"] == sum(e["completion_tokens"] or 0 for e in events)
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        if llm and not priced:
            assert row["total_cost"] is None
        else:
            assert row["total_cost"] == pytest.approx(sum(priced), rel=1e-12, abs=0)


def test_every_cost_is_tokens_times_the_price_map(pairs, price_map):
    llm = [e for _, events in pairs for e in events if e["type"] == "llm_call"]
    names = Counter(e["name"] for e in llm)
    assert len(names) == 6  # five priced models and the unpriced one
    for event in llm:
        entry = price_map.get(event["name"])
        if event["name"] == fixtures.UNPRICED_MODEL:
            assert entry is None
            assert event["cost"] is None
            continue
        expected = (
            event["prompt_tokens"] * entry["input_cost_per_token"]
            + event["completion_tokens"] * entry["output_cost_per_token"]
        )
        assert event["cost"] == pytest.approx(expected, rel=1e-12)
    unpriced = names[fixtures.UNPRICED_MODEL] / len(llm)
    assert 0.004 < unpriced < 0.02


def test_about_five_percent_fail_with_a_few_error_types(pairs):
    rows = executions_of(pairs)
    failed = [r for r in rows if r["status"] == "failed"]
    assert 0.035 < len(failed) / len(rows) < 0.065
    assert {r["status"] for r in rows} == {"completed", "failed"}
    kinds = Counter(r["error_type"] for r in failed)
    assert set(kinds) == set(fixtures.ERROR_TYPES)
    assert all(r["error"] for r in failed)
    assert all(
        r["error"] is None and r["error_type"] is None for r in rows if r["status"] == "completed"
    )
    # Messages carry varying numbers and ids (a parent that fails with its
    # child's exception repeats the child's message).
    assert len({r["error"] for r in failed}) > 0.6 * len(failed)


def test_agents_tools_memory_and_spread(pairs):
    rows = executions_of(pairs)
    agents = Counter(r["agent_name"] for r in rows)
    assert len(agents) == len(fixtures.AGENTS) >= 20
    assert agents.most_common(1)[0][0] == "chatbot"
    assert {
        "translator",
        "chatbot",
        "researcher",
        "summarizer",
        "project_a_classifier",
        "project_a_router",
    } <= set(agents)
    events = [e for _, evs in pairs for e in evs]
    types = Counter(e["type"] for e in events)
    assert types["llm_call"] > types["tool_call"] > types["memory_operation"] > 0
    assert {e["name"] for e in events if e["type"] == "tool_call"} == set(fixtures.TOOLS)
    # Durations are log-normal per agent: translator's median is well below researcher's.
    translator = statistics.median(r["duration"] for r in rows if r["agent_name"] == "translator")
    researcher = statistics.median(r["duration"] for r in rows if r["agent_name"] == "researcher")
    assert 0.35 < translator < 0.7 and researcher > 4 * translator


def test_nested_runs_share_their_trace(pairs):
    rows = {r["id"]: r for r in executions_of(pairs)}
    children = [r for r in rows.values() if r["parent_id"] is not None]
    assert 0.08 < len(children) / len(rows) < 0.3
    for child in children:
        parent = rows[child["parent_id"]]
        assert child["trace_id"] == parent["trace_id"]
        assert (
            parent["started_at"]
            <= child["started_at"]
            <= child["ended_at"]
            <= parent["ended_at"] + 1e-6
        )
    for root in (r for r in rows.values() if r["parent_id"] is None):
        assert root["trace_id"] == root["id"]
    # Some traces are three levels deep (orchestrator -> researcher -> summarizer).
    depth3 = [c for c in children if rows[c["parent_id"]]["parent_id"] is not None]
    assert depth3


def test_ids_hold_their_start_time_and_are_unique(pairs):
    rows = executions_of(pairs)
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        low, high = id_time_range(row["id"])
        assert low <= row["started_at"] < high
        assert len(row["id"]) == len(new_execution_id())


def test_ninety_days_before_end_more_on_weekdays(pairs):
    rows = executions_of(pairs)
    assert min(r["started_at"] for r in rows) >= END_TS - 90 * DAY
    assert max(r["ended_at"] for r in rows) <= END_TS
    assert max(r["started_at"] for r in rows) > END_TS - DAY
    by_weekday = Counter(time.gmtime(r["started_at"]).tm_wday for r in rows)
    weekday = sum(by_weekday[d] for d in range(5)) / 5
    weekend = (by_weekday[5] + by_weekday[6]) / 2
    assert 0.2 < weekend / weekday < 0.45


def test_traces_come_oldest_first(pairs):
    roots = [r["started_at"] for r in executions_of(pairs) if r["parent_id"] is None]
    assert roots == sorted(roots)


def test_planted_slowdown_is_forty_percent(prices):
    plain = list(fixtures.generate(8_000, seed=3, days=10, end=END, prices=prices))
    slow = list(
        fixtures.generate(
            8_000,
            seed=3,
            days=10,
            end=END,
            prices=prices,
            slowdown={"agent": "summarizer", "factor": 1.4, "days": 2},
        )
    )
    window = END_TS - 2 * DAY
    assert len(plain) == len(slow)
    ratios = []
    for (a, _), (b, _) in zip(plain, slow, strict=True):
        if (
            a["agent_name"] == "summarizer"
            and a["status"] == "completed"
            and a["started_at"] >= window
        ):
            ratios.append(b["duration"] / a["duration"])
        elif (
            a["agent_name"] != "summarizer"
            and a["parent_id"] is None
            and a["started_at"] < window - DAY
        ):
            assert b == a  # outside the window and not holding a summarizer: untouched
    assert len(ratios) > 50
    assert statistics.median(ratios) == pytest.approx(1.4, rel=0.02)

    # What an analyst sees: the last 2 days' median against the rest.
    def median(rows, recent):
        return statistics.median(
            r["duration"]
            for r, _ in rows
            if r["agent_name"] == "summarizer"
            and r["status"] == "completed"
            and (r["started_at"] >= window) == recent
        )

    assert median(slow, True) / median(slow, False) == pytest.approx(1.4, abs=0.12)
    assert median(plain, True) / median(plain, False) == pytest.approx(1.0, abs=0.12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": -1}, "n must be"),
        ({"n": 1.5}, "n must be"),
        ({"n": 5, "days": 0}, "days must be"),
        ({"n": 5, "end": "yesterday"}, "ISO date"),
        ({"n": 5, "slowdown": {"agent": "nobody"}}, "not a fixture agent"),
        ({"n": 5, "slowdown": {"agent": "summarizer", "speed": 2}}, "unknown slowdown keys"),
        ({"n": 5, "slowdown": {"agent": "summarizer", "factor": -1}}, "positive"),
    ],
)
def test_bad_arguments_say_what_is_wrong(prices, kwargs, message):
    with pytest.raises(ValueError, match=message):
        list(fixtures.generate(prices=prices, **kwargs))


def test_missing_model_slot_is_named():
    with pytest.raises(ValueError, match="gpt-4o-mini"):
        fixtures.resolve_models({})


def test_fill_appends_to_a_real_store(prices):
    from kagura.observability.eventstore import EventStore

    rows = list(fixtures.generate(1_500, seed=9, end=END, prices=prices))
    with EventStore() as store:
        assert fixtures.fill(store, 1_500, seed=9, batch=400, end=END, prices=prices) == 1_500
        stats = store.get_summary_stats()
        assert stats["total_executions"] == 1_500
        assert stats["failed"] == sum(r["status"] == "failed" for r, _ in rows)
        assert stats["total_cost"] == pytest.approx(
            sum(r["total_cost"] or 0 for r, _ in rows), rel=1e-9
        )
        assert stats["llm_calls"] == sum(e["type"] == "llm_call" for _, evs in rows for e in evs)
        some = rows[777][0]
        got = store.get_execution(some["id"][:20])
        assert got["id"] == some["id"] and len(got["events"]) == len(rows[777][1])


def test_checked_in_sample_matches_its_command(tmp_path, prices):
    meta = json.loads((fixtures.SAMPLE_DIR / "sample.json").read_text())
    assert meta["command"] == (
        f"python -m kagura.synthetic.fixtures sample --n {meta['n']} --seed {meta['seed']} --end {meta['end_iso']}"
    )
    assert (fixtures.SAMPLE_DIR / "executions.parquet").stat().st_size + (
        fixtures.SAMPLE_DIR / "events.parquet"
    ).stat().st_size < 2_000_000
    loaded = fixtures.load_sample(end=meta["end"])
    assert len(loaded) == meta["executions"] == meta["n"]
    assert sum(len(evs) for _, evs in loaded) == meta["events"]
    regenerated = list(
        fixtures.generate(meta["n"], seed=meta["seed"], end=meta["end_iso"], prices=prices)
    )
    assert loaded == regenerated


def test_sample_moves_to_a_new_end():
    meta = json.loads((fixtures.SAMPLE_DIR / "sample.json").read_text())
    as_made = fixtures.load_sample(end=meta["end"])
    before = time.time()
    moved = fixtures.load_sample()
    after = time.time()
    shift = [
        m["started_at"] - a["started_at"] for (m, _), (a, _) in zip(moved, as_made, strict=True)
    ]
    assert before - meta["end"] - 1e-3 <= min(shift) <= max(shift) <= after - meta["end"] + 1e-3
    assert max(shift) - min(shift) < 1e-3
    event_shift = moved[0][1][0]["started_at"] - as_made[0][1][0]["started_at"]
    assert event_shift == pytest.approx(shift[0], abs=1e-3)


def test_load_sample_from_an_empty_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m kagura.synthetic.fixtures sample"):
        fixtures.load_sample(tmp_path)


def test_command_line_fills_a_store_and_refuses_bad_input(tmp_path):
    db = tmp_path / "t.db"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kagura.synthetic.fixtures",
            "fill",
            "--db",
            str(db),
            "--n",
            "300",
            "--end",
            END,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "appended 300 executions" in done.stdout
    from kagura.observability.eventstore import EventStore

    with EventStore(db) as store:
        assert store.get_summary_stats()["total_executions"] == 300
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "kagura.synthetic.fixtures",
            "fill",
            "--db",
            str(db),
            "--n",
            "-3",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: n must be a whole number >= 0, got -3"]


# --- the vectorized path ------------------------------------------------------------


@pytest.fixture(scope="module")
def arrow_chunks(prices):
    pytest.importorskip("numpy")
    return list(fixtures.generate_arrow(25_000, seed=4, end=END, chunk=10_000, prices=prices))


def test_arrow_chunks_have_the_store_schema_and_n_rows(arrow_chunks):
    exec_schema, event_schema = fixtures.arrow_schemas()
    assert [t.num_rows for t, _ in arrow_chunks] == [10_000, 10_000, 5_000]
    for executions, events in arrow_chunks:
        assert executions.schema == exec_schema
        assert events.schema == event_schema
        assert events.num_rows == 3 * executions.num_rows
    starts = [s for t, _ in arrow_chunks for s in t.column("started_at").to_pylist()]
    assert starts == sorted(starts)
    assert starts[0] >= END_TS - 90 * DAY
    assert max(e for t, _ in arrow_chunks for e in t.column("ended_at").to_pylist()) <= END_TS


def test_arrow_is_deterministic(arrow_chunks, prices):
    again = list(fixtures.generate_arrow(25_000, seed=4, end=END, chunk=10_000, prices=prices))
    for (a, b), (c, d) in zip(arrow_chunks, again, strict=True):
        assert a.equals(c) and b.equals(d)


def test_arrow_rows_validate_and_add_up(arrow_chunks, price_map):
    executions, events = arrow_chunks[1]
    rows = executions.to_pylist()
    by_id: dict[str, list[dict]] = {}
    for event in events.to_pylist():
        by_id.setdefault(event["execution_id"], []).append(event)
    ids = {r["id"] for r in rows}
    assert len(ids) == len(rows)
    for row in rows:
        assert execution_row(**row) == row
        low, high = id_time_range(row["id"])
        assert low <= row["started_at"] < high
        evs = by_id[row["id"]]
        assert [e["seq"] for e in evs] == [0, 1, 2]
        totals = totals_from_events(evs)
        for key, value in totals.items():
            if key == "total_cost" and value is not None:
                assert row[key] == pytest.approx(value, rel=1e-12)
            else:
                assert row[key] == value, key
        for event in evs:
            if event["type"] == "llm_call" and event["name"] != fixtures.UNPRICED_MODEL:
                entry = price_map[event["name"]]
                expected = (
                    event["prompt_tokens"] * entry["input_cost_per_token"]
                    + event["completion_tokens"] * entry["output_cost_per_token"]
                )
                assert event["cost"] == pytest.approx(expected, rel=1e-12)
            elif event["type"] == "llm_call":
                assert event["cost"] is None
        if row["parent_id"] is not None:
            assert row["parent_id"] in ids
    failed = sum(r["status"] == "failed" for r in rows) / len(rows)
    assert 0.03 < failed < 0.07
    nested = sum(r["parent_id"] is not None for r in rows) / len(rows)
    assert 0.12 < nested < 0.18
    by_trace = {r["id"]: r["trace_id"] for r in rows}
    for row in rows:
        if row["parent_id"] is not None:
            assert row["trace_id"] == by_trace[row["parent_id"]]
        else:
            assert row["trace_id"] == row["id"]
