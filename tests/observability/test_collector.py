"""The recorder: Kagura's collector API, nesting through context variables, and a store that fails."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from kagura.observability import (  # noqa: E402
    EventStore,
    Telemetry,
    TelemetryCollector,
    get_global_telemetry,
    set_global_telemetry,
)
from kagura.observability.recording import collector as collector_module  # noqa: E402
from kagura.observability.recording.collector import current_execution_id, flush  # noqa: E402
from kagura.observability.store.tail import BUSY_TIMEOUT_MS  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "telemetry.db")
    yield s
    flush(s)
    s.close()


@pytest.fixture(autouse=True)
def fresh_global():
    set_global_telemetry(None)
    yield
    flush()
    set_global_telemetry(None)


def read(store: EventStore, execution_id: str) -> dict:
    flush(store)
    return store.get_execution(execution_id)


def test_track_execution_records_the_run_and_its_events(store):
    collector = TelemetryCollector(store)

    async def main() -> str:
        async with collector.track_execution(
            "translator", text="Hello", api_key="sk-abcdefghijklmnopqrstuvwx"
        ) as exec_id:
            flush(store)
            during = store.get_execution(exec_id)
            assert during["status"] == "running"  # visible while it runs
            collector.record_llm_call("gpt-4o-mini", 100, 50, 0.5, cost=0.25, finish_reason="stop")
            collector.record_tool_call("search", 0.1, arguments={"q": "owls", "password": "pw"})
            collector.record_memory_operation("store", 0.02, key="k")
            collector.record_event("custom", note="hello")
            collector.record_metric("quality", 0.9)
            collector.add_tag("env", "prod")
            collector.add_tag("auth_token", "abc123")
            assert collector.get_current_execution()["id"] == exec_id
        return exec_id

    exec_id = asyncio.run(main())
    run = read(store, exec_id)
    assert run["status"] == "completed"
    assert run["agent_name"] == "translator"
    assert run["kwargs"] == {"text": "Hello", "api_key": "[REDACTED]"}
    assert run["tags"] == {"env": "prod", "auth_token": "[REDACTED]"}
    assert run["metrics"]["quality"] == 0.9
    assert run["metrics"]["total_cost"] == 0.25
    assert run["metrics"]["total_tokens"] == 150
    assert run["metrics"]["llm_calls"] == 1
    assert run["metrics"]["tool_calls"] == 1
    assert run["duration"] > 0
    events = run["events"]
    assert [(e["type"], e["name"], e["seq"]) for e in events] == [
        ("llm_call", "gpt-4o-mini", 0),
        ("tool_call", "search", 1),
        ("memory_operation", "store", 2),
        ("custom", None, 3),
    ]
    assert events[0]["data"]["finish_reason"] == "stop"
    assert events[1]["data"]["arguments"] == {"q": "owls", "password": "[REDACTED]"}
    assert events[1]["status"] == "completed"
    assert events[2]["data"]["key"] == "k"
    assert events[3]["data"]["note"] == "hello"


def test_cost_is_looked_up_when_not_given(store):
    import litellm

    collector = TelemetryCollector(store)

    async def main() -> str:
        async with collector.track_execution("a") as exec_id:
            collector.record_llm_call("gpt-4o", 1200, 300, 1.0)
            collector.record_llm_call("private/unknown-model", 10, 10, 0.1)
        return exec_id

    run = read(store, asyncio.run(main()))
    entry = litellm.model_cost["gpt-4o"]
    expected = 1200 * entry["input_cost_per_token"] + 300 * entry["output_cost_per_token"]
    assert run["events"][0]["cost"] == pytest.approx(expected, rel=1e-12)
    assert run["events"][1]["cost"] is None
    assert run["metrics"]["unpriced_calls"] == 1
    assert run["metrics"]["total_cost"] == pytest.approx(expected, rel=1e-12)


def test_failure_is_recorded_and_the_same_exception_reraised(store):
    collector = TelemetryCollector(store)
    error = ValueError("bad input: 42")
    ids = []

    async def main():
        async with collector.track_execution("fragile") as exec_id:
            ids.append(exec_id)
            raise error

    with pytest.raises(ValueError) as caught:
        asyncio.run(main())
    assert caught.value is error
    run = read(store, ids[0])
    assert (run["status"], run["error_type"], run["error"]) == (
        "failed",
        "ValueError",
        "bad input: 42",
    )


def test_cancellation_is_recorded_as_cancelled(store):
    collector = TelemetryCollector(store)
    ids = []

    async def slow():
        async with collector.track_execution("slow") as exec_id:
            ids.append(exec_id)
            await asyncio.sleep(10)

    async def main():
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    run = read(store, ids[0])
    assert run["status"] == "cancelled"
    assert run["error_type"] == "CancelledError"


def test_recording_outside_a_run_does_nothing(store):
    collector = TelemetryCollector(store)
    collector.record_llm_call("gpt-4o-mini", 1, 1, 0.1)
    collector.record_tool_call("t", 0.1)
    collector.record_memory_operation("load", 0.1)
    collector.record_event("custom", x=1)
    collector.record_metric("m", 1)
    collector.add_tag("k", "v")
    assert collector.get_current_execution() is None
    flush(store)
    assert store.get_executions() == []


def test_nesting_across_gather_keeps_each_child_with_its_parent(store):
    collector = TelemetryCollector(store)

    async def child(name: str) -> tuple[str, str | None]:
        async with collector.track_execution(name) as exec_id:
            await asyncio.sleep(0)
            collector.record_tool_call(f"tool_of_{name}", 0.01)
            return exec_id, current_execution_id()

    async def parent(name: str) -> tuple[str, list]:
        async with collector.track_execution(name) as exec_id:
            kids = await asyncio.gather(child(f"{name}.a"), child(f"{name}.b"))
            assert current_execution_id() == exec_id  # restored after the children
            return exec_id, kids

    async def main():
        return await asyncio.gather(parent("p1"), parent("p2"))

    results = asyncio.run(main())
    assert current_execution_id() is None
    flush(store)
    for parent_id, kids in results:
        for kid_id, seen_inside in kids:
            assert seen_inside == kid_id
            kid = store.get_execution(kid_id)
            assert kid["parent_id"] == parent_id
            assert kid["trace_id"] == parent_id
            [event] = kid["events"]
            assert event["name"] == f"tool_of_{kid['agent_name']}"
    assert len(store.get_executions()) == 6


def test_instrument_records_async_and_sync_functions(store):
    telemetry = Telemetry(store)

    @telemetry.instrument()
    async def summarize(text: str, words: int = 10) -> str:
        return text[:words]

    @telemetry.instrument("counter")
    def count(items: list) -> int:
        if not items:
            raise LookupError("empty")
        return len(items)

    assert asyncio.run(summarize("hello world", 5)) == "hello"
    assert count([1, 2, 3]) == 3
    with pytest.raises(LookupError):
        count([])
    flush(store)
    rows = sorted(store.get_executions(), key=lambda r: r["started_at"])
    assert [(r["agent_name"], r["status"]) for r in rows] == [
        ("summarize", "completed"),
        ("counter", "completed"),
        ("counter", "failed"),
    ]
    assert rows[0]["kwargs"] == {"text": "hello world", "words": 5}
    assert rows[2]["error_type"] == "LookupError"


def test_global_telemetry_defaults_to_the_home_store(kagura_home):
    telemetry = get_global_telemetry()
    assert get_global_telemetry() is telemetry

    @telemetry.instrument("home_run")
    async def work() -> int:
        return 1

    asyncio.run(work())
    flush()
    assert (kagura_home / "telemetry.db").is_file()
    assert [r["agent_name"] for r in EventStore().get_executions()] == ["home_run"]

    mine = Telemetry(TelemetryCollector(EventStore(":memory:")))
    set_global_telemetry(mine)
    assert get_global_telemetry() is mine


def test_telemetry_off_records_nothing_and_creates_nothing(kagura_home, monkeypatch):
    monkeypatch.setenv("KAGURA_TELEMETRY", "0")

    @get_global_telemetry().instrument("quiet")
    async def work() -> int:
        get_global_telemetry().collector.record_llm_call("gpt-4o", 1, 1, 0.1)
        return 7

    assert asyncio.run(work()) == 7
    flush()
    assert not kagura_home.exists()


def test_caller_thread_writes_when_not_in_background(store):
    collector = TelemetryCollector(store, background=False)
    with collector.recording("sync_run", {"x": 1}) as run:
        assert store.get_execution(run.id)["status"] == "running"  # no flush needed
    assert store.get_execution(run.id)["status"] == "completed"


def test_threads_with_a_copied_context_are_children(store):
    import contextvars

    collector = TelemetryCollector(store)
    child_ids = []

    def in_thread():
        with collector.recording("threaded") as run:
            child_ids.append(run.id)

    with collector.recording("main") as parent:
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(in_thread,))
        thread.start()
        thread.join()
    flush(store)
    assert store.get_execution(child_ids[0])["parent_id"] == parent.id


# --- telemetry never breaks the agent -------------------------------------------------


def telemetry_warnings(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "kagura.telemetry" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("breakage", ["db_is_a_directory", "home_is_a_file", "db_is_not_a_store"])
def test_a_broken_store_logs_one_warning_and_the_agent_goes_on(kagura_home, caplog, breakage):
    from kagura import agent

    if breakage == "db_is_a_directory":
        (kagura_home / "telemetry.db").mkdir(parents=True)
    elif breakage == "home_is_a_file":
        kagura_home.parent.mkdir(parents=True, exist_ok=True)
        kagura_home.write_text("not a folder")
    else:
        kagura_home.mkdir(parents=True)
        (kagura_home / "telemetry.db").write_bytes(b"this is not a database" * 100)

    @agent(model="gpt-4o-mini", mock_response="fine")
    async def sturdy(q: str) -> str:
        """{{ q }}"""

    async def main():
        return [await sturdy("a"), await sturdy("b"), await sturdy("c")]

    with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
        assert asyncio.run(main()) == ["fine", "fine", "fine"]
        flush()
    warnings = telemetry_warnings(caplog)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "telemetry not recorded" in warnings[0].getMessage()


def test_a_locked_store_holds_the_agent_back_no_longer_than_the_commit_timeout(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(collector_module, "COMMIT_TIMEOUT", 0.3)
    store = EventStore(tmp_path / "locked.db")
    store.get_executions()  # create the schema
    telemetry = Telemetry(store)

    @telemetry.instrument("patient")
    async def work() -> str:
        return "done"

    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    started = time.perf_counter()
    try:
        with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
            assert asyncio.run(work()) == "done"
        # The store waits up to its busy timeout (10 s) for the lock; the agent waits
        # for its commit only COMMIT_TIMEOUT (0.3 s here), then goes on with one warning.
        # (How long a call takes is measured in bench/, not asserted here.)
        assert time.perf_counter() - started < BUSY_TIMEOUT_MS / 1000
        [warning] = telemetry_warnings(caplog)
        assert "telemetry delayed" in warning.getMessage()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert flush(store)
    [row] = store.get_executions()
    assert (row["agent_name"], row["status"]) == ("patient", "completed")


def test_a_bad_event_is_dropped_with_one_warning_and_its_run_recorded(store, caplog):
    collector = TelemetryCollector(store)
    with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
        for _ in range(3):
            with collector.recording("bad"):
                collector.record_tool_call(
                    "t", -1.0
                )  # a negative duration is refused by the row model
                collector.record_tool_call("u", 0.5)
        flush(store)
    assert len(telemetry_warnings(caplog)) == 1
    rows = store.get_executions()
    assert [r["status"] for r in rows] == ["completed"] * 3
    events = store.get_execution(rows[0]["id"])["events"]
    assert [(e["name"], e["seq"]) for e in events] == [("u", 1)]
