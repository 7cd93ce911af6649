"""`EventStore.search` and `kagura monitor search`: a plain scan of errors, arguments and content.

Runs are recorded through the real collector; half of them are moved to the
Parquet lake, so the scan covers both. Expected hits are listed by hand.
"""

from __future__ import annotations

import json

import pytest
from cli_process import run_cli

import kagura
from kagura.observability import EventStore, TelemetryCollector


@pytest.fixture
def store(kagura_home):
    kagura_home.mkdir(parents=True)
    store = EventStore(kagura_home / "telemetry.db", auto_compact=False)
    collector = TelemetryCollector(store)
    with collector.recording("finder", {"query": "Blue Whale facts"}):
        collector.record_tool_call("web", 0.1, arguments={"q": "whale size"})
    try:
        with collector.recording("finder", {"query": "cats"}):
            raise TimeoutError("upstream WHALE service timed out")
    except TimeoutError:
        pass
    store.compact()  # the two runs above are in the lake now
    with kagura.context(user_id="ann"), collector.recording("writer", {"topic": "dogs"}):
        collector.record_event("output", name="return_value", content="a poem about a whale")
    with collector.recording("writer", {"topic": "100%_literal"}):
        pass
    yield store
    store.close()


def test_search_finds_errors_arguments_event_data_and_content(store):
    hits = {(h["agent_name"], h["field"]) for h in store.search("whale")}
    assert hits == {
        ("finder", "arguments"),
        ("finder", "event:tool_call:web"),
        ("finder", "error"),
        ("writer", "event:output:return_value"),
    }
    assert store.search("WHALE SERVICE")[0]["snippet"] == "upstream WHALE service timed out"
    assert store.search("nothing like this") == []


def test_search_takes_text_literally_and_filters(store):
    assert [h["field"] for h in store.search("100%_lit")] == ["arguments"]
    assert store.search("0%x") == []  # % and _ are not wildcards
    assert {h["agent_name"] for h in store.search("whale", agent_name="writer")} == {"writer"}
    assert len(store.search("whale", limit=2)) == 2
    assert [h["field"] for h in store.where(user_id="ann").search("whale")] == [
        "event:output:return_value"
    ]
    with pytest.raises(ValueError, match="give some text"):
        store.search("  ")


def test_cli_search(store):
    result = run_cli("monitor", "search", "whale", "--agent", "finder", "--json")
    assert result.returncode == 0, result.stderr
    assert {h["field"] for h in json.loads(result.stdout)} == {
        "arguments",
        "event:tool_call:web",
        "error",
    }
    table = run_cli("monitor", "search", "whale")
    assert table.returncode == 0 and "Search: whale" in table.stdout and "writer" in table.stdout
    none = run_cli("monitor", "search", "zebra")
    assert none.returncode == 0 and none.stdout.strip() == "No run mentions 'zebra'."
    empty = run_cli("monitor", "search", " ")
    assert empty.returncode == 2 and empty.stderr.strip() == "Error: give some text to search for"
