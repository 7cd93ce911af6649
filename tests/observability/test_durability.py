"""Durable on return: a recorded call returns once its run is committed, runs share commits.

Every check reads the database file with a separate plain `sqlite3` connection,
never through the store, so "committed" means what another process would see.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from kagura import config  # noqa: E402
from kagura.observability import EventStore, TelemetryCollector  # noqa: E402
from kagura.observability.recording import collector as collector_module  # noqa: E402
from kagura.observability.recording.collector import after_commit, flush  # noqa: E402


class CountingStore(EventStore):
    """A real store that notes the size of every transaction the writer commits."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transactions: list[int] = []

    def append_many(self, pairs, *, wait=True):
        pairs = list(pairs)
        result = super().append_many(pairs, wait=wait)
        self.transactions.append(len(pairs))  # only once committed
        return result


class OldStyleStore(EventStore):
    """A store whose append_many takes no `wait`: the writer thread commits for it."""

    def append_many(self, pairs):
        return super().append_many(pairs)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "telemetry.db"


@pytest.fixture
def store(db):
    s = CountingStore(db, auto_compact=False)
    yield s
    flush(s)
    s.close()


@pytest.fixture(autouse=True)
def default_durability():
    config.set_durability(None)
    yield
    config.set_durability(None)


def on_disk(db, run_id: str) -> tuple | None:
    """(status, llm_calls, events) of a run as another connection sees the file."""
    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT status, llm_calls FROM executions WHERE id = ?", (run_id,)
        ).fetchone()
        events = con.execute(
            "SELECT count(*) FROM events WHERE execution_id = ?", (run_id,)
        ).fetchone()[0]
    finally:
        con.close()
    return None if row is None else (*row, events)


def test_a_sync_run_is_committed_when_its_block_exits(store, db):
    collector = TelemetryCollector(store)
    for i in range(20):
        with collector.recording("sync", {"i": i}) as run:
            collector.record_llm_call("gpt-4o-mini", 10, 5, 0.1, cost=0.001)
            collector.record_tool_call("search", 0.01)
        # No flush: the rows are in the file the moment the block is left.
        assert on_disk(db, run.id) == ("completed", 1, 2)


def test_a_failed_run_is_committed_before_the_exception_goes_on(store, db):
    collector = TelemetryCollector(store)
    with pytest.raises(KeyError):
        with collector.recording("fails") as run:
            raise KeyError("x")
    assert on_disk(db, run.id) == ("failed", 0, 0)


def test_an_async_run_is_committed_when_awaited_and_the_loop_is_never_blocked(store, db):
    collector = TelemetryCollector(store)
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main() -> str:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.02)
        blocker.execute("BEGIN EXCLUSIVE")  # the writer can't commit for 0.4 s
        threading.Timer(0.4, blocker.execute, ("ROLLBACK",)).start()
        started = time.perf_counter()
        async with collector.arecording("awaited") as run:
            collector.record_llm_call("gpt-4o-mini", 1, 1, 0.01, cost=0.0)
        waited = time.perf_counter() - started
        assert on_disk(db, run.id) == ("completed", 1, 1)
        stop.set()
        await task
        # The call waited for the lock to go, and the loop ran other tasks meanwhile.
        assert waited >= 0.3, waited
        during = [t for t in ticks if started < t < started + waited]
        assert len(during) >= 3, len(during)  # a blocked loop would tick at most once
        return run.id

    try:
        asyncio.run(main())
    finally:
        blocker.close()


def test_concurrent_runs_share_commits(store, db):
    collector = TelemetryCollector(store)

    async def one(i: int) -> str:
        async with collector.arecording("many", {"i": i}) as run:
            await asyncio.sleep(0)
            for _ in range(3):
                collector.record_tool_call("t", 0.001)
        assert on_disk(db, run.id) == ("completed", 0, 3)
        return run.id

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(64)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 64
    # 64 runs in fewer transactions than runs: those finishing during a commit join the next.
    assert sum(store.transactions) == 64
    assert len(store.transactions) < 64, store.transactions


def test_threads_share_commits_and_each_waits_for_its_own(store, db):
    collector = TelemetryCollector(store)
    missing: list[str] = []

    def worker() -> None:
        for _ in range(50):
            with collector.recording("threaded") as run:
                pass
            if on_disk(db, run.id) is None:
                missing.append(run.id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert missing == []
    assert sum(store.transactions) == 400
    assert len(store.transactions) < 400


def test_buffered_mode_returns_before_the_commit(store, db, caplog):
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for collector in (
            TelemetryCollector(store, durability="buffered"),
            TelemetryCollector(store),  # follows set_durability
        ):
            config.set_durability("buffered")
            with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
                with collector.recording("quick") as run:
                    pass
            # Returned while the store is still locked: it did not wait for its commit.
            assert on_disk(db, run.id) is None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert flush(store)
    assert on_disk(db, run.id) == ("completed", 0, 0)


def test_durability_from_the_environment(monkeypatch):
    monkeypatch.delenv("KAGURA_DURABILITY", raising=False)
    assert config.durability() == "durable"
    monkeypatch.setenv("KAGURA_DURABILITY", "buffered")
    assert config.durability() == "buffered"
    assert not TelemetryCollector(":memory:").durable()
    config.set_durability("durable")
    assert config.durability() == "durable"
    with pytest.raises(ValueError, match="buffered"):
        config.set_durability("sometimes")
    with pytest.raises(ValueError, match="durable"):
        TelemetryCollector(durability="fast")


def test_a_long_run_shows_as_running_and_its_final_row_wins(store, db):
    collector = TelemetryCollector(store)
    with collector.recording("slow") as run:
        deadline = time.monotonic() + 5
        while on_disk(db, run.id) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert on_disk(db, run.id) == ("running", 0, 0)
    assert on_disk(db, run.id) == ("completed", 0, 0)


def test_short_runs_are_written_once(store, db):
    collector = TelemetryCollector(store)
    for _ in range(30):
        with collector.recording("short"):
            pass
    assert sum(store.transactions) == 30  # no running rows: each run ended within 0.1 s


def test_runs_ending_around_the_running_threshold_end_completed(store, db, monkeypatch):
    monkeypatch.setattr(collector_module, "RUNNING_AFTER", 0.02)
    collector = TelemetryCollector(store)
    ids: list[str] = []

    def worker(seed: int) -> None:
        for i in range(15):
            with collector.recording("edge") as run:
                time.sleep(((seed * 7 + i) % 5) * 0.01)  # 0 to 40 ms, around 20 ms
            ids.append(run.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert flush(store)
    con = sqlite3.connect(db)
    statuses = dict(con.execute("SELECT id, status FROM executions").fetchall())
    con.close()
    assert len(ids) == 60
    assert {statuses[i] for i in ids} == {"completed"}
    # Some runs were shown as running first (two rows written for one run).
    assert sum(store.transactions) > 60


def test_after_commit_hooks_see_each_committed_run_once(store, db):
    seen: list[tuple[str, str, int]] = []

    def hook(hook_store, pairs):
        assert hook_store is store
        assert on_disk(db, pairs[0][0]["id"]) is not None  # called after the commit
        seen.extend((row["id"], row["status"], len(events)) for row, events in pairs)

    def broken(hook_store, pairs):
        raise RuntimeError("a hook that fails is logged and skipped")

    remove = after_commit(hook)
    remove_broken = after_commit(broken)
    collector = TelemetryCollector(store)
    try:
        ids = []
        for _ in range(5):
            with collector.recording("hooked") as run:
                collector.record_event("custom", n=1)
            ids.append(run.id)
        assert flush(store)
    finally:
        remove()
        remove_broken()
    assert seen == [(i, "completed", 1) for i in ids]
    with collector.recording("unhooked"):
        pass
    assert len(seen) == 5


def committing_threads(store, record) -> list[str]:
    """The names of the threads that committed the runs `record()` recorded."""
    names: list[str] = []
    remove = after_commit(
        lambda s, pairs: names.extend(threading.current_thread().name for _ in pairs)
    )
    try:
        record()
        assert flush(store)
    finally:
        remove()
    return names


def test_a_sequential_sync_caller_commits_its_own_runs(store, db):
    collector = TelemetryCollector(store)

    def record():
        for _ in range(10):
            with collector.recording("inline") as run:
                collector.record_tool_call("t", 0.001)
            assert on_disk(db, run.id) == ("completed", 0, 1)

    # No hand-off to the writer thread and back: the main thread wrote each commit.
    assert committing_threads(store, record) == ["MainThread"] * 10
    assert store.transactions == [1] * 10


def test_a_locked_store_sends_the_callers_run_through_the_writer(store, db, caplog):
    collector = TelemetryCollector(store)
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, blocker.execute, ("ROLLBACK",)).start()
    runs = []

    def record():
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="kagura.telemetry"):
            with collector.recording("waits") as run:
                pass
        runs.append(run)
        # The caller did not wait on the lock itself: it queued the run and waited for it.
        assert time.perf_counter() - started >= 0.2
        assert on_disk(db, run.id) == ("completed", 0, 0)

    try:
        assert committing_threads(store, record) == ["kagura-telemetry-writer"]
    finally:
        blocker.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_store_without_wait_is_written_by_the_writer_thread(db):
    store = OldStyleStore(db)
    collector = TelemetryCollector(store)

    def record():
        with collector.recording("old") as run:
            pass
        assert on_disk(db, run.id) == ("completed", 0, 0)

    try:
        assert committing_threads(store, record) == ["kagura-telemetry-writer"]
    finally:
        store.close()
