"""Stores for the analytics tests: small hand-made ones (tail or lake) and the fixture telemetry.

Every analytic is checked with its rows in the SQLite tail and again after
`compact()` has moved them into the Parquet lake, so both read paths answer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kagura.observability import fixtures, model
from kagura.observability.store import EventStore

DAY = 86400.0
HOUR = 3600.0
ROOT = Path(__file__).resolve().parents[2]

# The fixture telemetry the regression tests read: 20,000 runs over 90 days ending on a
# Thursday afternoon (UTC), with and without a planted 40% slowdown of one agent.
FIXTURE_N = 20_000
FIXTURE_SEED = 1
FIXTURE_END = "2025-06-12T18:00:00+00:00"
PLANTED = "summarizer"


def prices() -> dict[str, tuple[float, float]]:
    """The prices the checked-in sample was made with (no litellm import needed)."""
    meta = json.loads((ROOT / "data" / "fixtures" / "sample.json").read_text())
    return {
        name: (p["input_cost_per_token"], p["output_cost_per_token"])
        for name, p in meta["prices"].items()
    }


def run(
    agent: str,
    started_at: float,
    duration: float | None = 1.0,
    status: str = "completed",
    cost: float | None = 0.0,
    model_name: str | None = "gpt-4o-mini",
    error: str | None = None,
    error_type: str | None = None,
    unpriced: int = 0,
    llm_calls: int = 1,
    tokens: int = 0,
) -> dict:
    """One execution row; a running row has no duration and no end."""
    ended = None if duration is None or status == "running" else started_at + duration
    return model.execution_row(
        id=model.new_execution_id(at=started_at),
        agent_name=agent,
        started_at=started_at,
        ended_at=ended,
        duration=None if status == "running" else duration,
        status=status,
        total_cost=cost,
        model=model_name,
        error=error,
        error_type=error_type,
        llm_calls=llm_calls,
        unpriced_calls=unpriced,
        total_tokens=tokens,
    )


def llm(
    row: dict,
    seq: int,
    at: float,
    name: str,
    cost: float | None,
    duration: float = 0.5,
    prompt: int = 10,
    completion: int = 5,
) -> dict:
    """One llm_call event of `row`."""
    return model.event_row(
        row["id"],
        seq,
        "llm_call",
        at,
        name=name,
        duration=duration,
        cost=cost,
        prompt_tokens=prompt,
        completion_tokens=completion,
        status="completed",
    )


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
