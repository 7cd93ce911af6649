"""Stores for the analytics tests: small hand-made ones (tail or lake) and the fixture telemetry.

Every analytic is checked with its rows in the SQLite tail and again after
`compact()` has moved them into the Parquet lake, so both read paths answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from analytics_rows import FIXTURE_END, FIXTURE_N, FIXTURE_SEED, PLANTED, prices

from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures


@pytest.fixture(params=["tail", "lake"])
def where(request) -> str:
    """Where the rows live when the analytic runs: the SQLite tail or the Parquet lake."""
    return request.param


@pytest.fixture
def make_store(tmp_path, where):
    """make_store(rows or (row, events) pairs) -> an EventStore holding them in `where`."""
    opened: list[EventStore] = []

    def make(items=()) -> EventStore:
        store = EventStore(tmp_path / f"telemetry{len(opened)}.db", auto_compact=False)
        opened.append(store)
        pairs = [item if isinstance(item, tuple) else (item, []) for item in items]
        if pairs:
            store.append_many(pairs)
        if where == "lake":
            store.compact()
            assert store.tail_size()["settled"] == 0
            assert pairs == [] or store.segments()
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def tokyo(monkeypatch):
    """Local time is Asia/Tokyo (UTC+9): local dates differ from UTC ones."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield "Asia/Tokyo"
    monkeypatch.undo()
    time.tzset()


def _fixture_store(folder: Path, slowdown: dict | None, compact: bool) -> EventStore:
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    options = {"slowdown": slowdown} if slowdown else {}
    fixtures.fill(store, FIXTURE_N, seed=FIXTURE_SEED, end=FIXTURE_END, prices=prices(), **options)
    if compact:
        store.compact()
    return store


@pytest.fixture(scope="session")
def fixture_end() -> float:
    return fixtures.parse_end(FIXTURE_END)


@pytest.fixture(scope="session")
def fixture_store(tmp_path_factory):
    """The fixture telemetry with no planted change, left in the SQLite tail."""
    store = _fixture_store(tmp_path_factory.mktemp("fixture-plain"), None, compact=False)
    yield store
    store.close()


@pytest.fixture(scope="session")
def slowed_store(tmp_path_factory):
    """The same telemetry with the planted agent 40% slower over the last 2 days, in the lake."""
    slowdown = {"agent": PLANTED, "factor": 1.4, "days": 2}
    store = _fixture_store(tmp_path_factory.mktemp("fixture-slowed"), slowdown, compact=True)
    yield store
    store.close()
