"""Row validation, ids and the public dict shape."""

from __future__ import annotations

import math
import time

import pytest

from kagura.observability.store.rows import (
    event_dict,
    event_row,
    execution_dict,
    execution_row,
    from_json,
    id_time_range,
    new_execution_id,
    rows_from_execution_dict,
    totals_from_events,
)


def test_ids_are_time_ordered_and_do_not_collide():
    before = time.time()
    ids = [new_execution_id() for _ in range(50_000)]
    after = time.time()
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 33 and i.startswith("exec_") for i in ids)
    low, high = id_time_range(ids[0])
    assert before - 0.001 <= low <= after and high - low <= 0.0011
    assert id_time_range("exec_abc") is not None
    assert id_time_range("run-123") is None


def test_id_made_for_a_past_time_encodes_that_time():
    at = 1_700_000_000.25
    low, high = id_time_range(new_execution_id(at=at))
    assert low <= at < high


def base(**over):
    fields = dict(id="exec_1", agent_name="a", started_at=10.0, status="completed")
    fields.update(over)
    return fields


@pytest.mark.parametrize("missing", ["id", "agent_name", "started_at", "status"])
def test_missing_required_field_is_named(missing):
    fields = base()
    del fields[missing]
    with pytest.raises(ValueError, match=missing):
        execution_row(**fields)


def test_unknown_status_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="completed, failed"):
        execution_row(**base(status="done"))


@pytest.mark.parametrize(
    "field,value",
    [
        ("total_cost", math.nan),
        ("total_cost", -1.0),
        ("duration", math.inf),
        ("duration", -0.5),
        ("started_at", math.nan),
    ],
)
def test_bad_numbers_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        execution_row(**base(**{field: value}))


def test_values_json_cannot_hold_are_stored_as_repr():
    cyclic: list = []
    cyclic.append(cyclic)

    class Thing:
        def __repr__(self):
            return "<Thing>"

    row = execution_row(
        **base(kwargs={"obj": Thing(), "nan": math.nan, "loop": cyclic, 3: "int key"})
    )
    kwargs = from_json(row["kwargs"])
    assert kwargs == {"obj": "<Thing>", "nan": "nan", "loop": ["<cycle>"], "3": "int key"}


def test_duration_follows_from_end_and_counters_default_to_zero():
    row = execution_row(**base(ended_at=12.5))
    assert row["duration"] == 2.5
    assert row["llm_calls"] == 0 and row["total_tokens"] == 0
    assert row["trace_id"] == "exec_1"


def test_totals_leave_unknown_prices_out_and_count_them():
    events = [
        event_row(
            "e", 0, "llm_call", 1.0, name="m", prompt_tokens=10, completion_tokens=5, cost=0.25
        ),
        event_row(
            "e", 1, "llm_call", 2.0, name="private", prompt_tokens=3, completion_tokens=4, cost=None
        ),
        event_row("e", 2, "tool_call", 3.0, name="t", duration=0.1),
    ]
    totals = totals_from_events(events)
    assert totals == {
        "total_cost": 0.25,
        "total_tokens": 22,
        "prompt_tokens": 13,
        "completion_tokens": 9,
        "llm_calls": 2,
        "tool_calls": 1,
        "unpriced_calls": 1,
    }
    only_unpriced = totals_from_events(events[1:2])
    assert only_unpriced["total_cost"] is None and only_unpriced["unpriced_calls"] == 1


def test_kagura_execution_dict_round_trip():
    execution = {
        "id": "exec_abc12345",
        "agent_name": "translator",
        "status": "completed",
        "started_at": 100.0,
        "ended_at": 100.52,
        "kwargs": {"text": "Hello"},
        "events": [
            {
                "type": "llm_call",
                "timestamp": 100.0,
                "data": {
                    "model": "gpt-4o-mini",
                    "prompt_tokens": 60,
                    "completion_tokens": 25,
                    "cost": 0.0003,
                    "duration": 0.48,
                },
            },
            {
                "type": "memory_operation",
                "timestamp": 100.48,
                "data": {"operation": "store", "duration": 0.02},
            },
        ],
        "metrics": {"custom_score": 0.9},
    }
    row, events = rows_from_execution_dict(execution)
    assert row["llm_calls"] == 1 and row["total_tokens"] == 85 and row["total_cost"] == 0.0003
    assert [e["name"] for e in events] == ["gpt-4o-mini", "store"]
    public = execution_dict(row)
    assert public["metrics"]["custom_score"] == 0.9 and public["metrics"]["total_tokens"] == 85
    assert round(public["duration"], 6) == 0.52
    event = event_dict(events[0])
    assert event["data"]["model"] == "gpt-4o-mini" and event["data"]["cost"] == 0.0003
