"""Sessions, users, tags and metadata: kagura.context and @agent(tags=, metadata=), stored and queried.

Runs are recorded through the real collector into a real SQLite tail, moved to
the real Parquet lake by compaction, and read back through DuckDB; expected
values are written out by hand.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import kagura
from kagura.agent import AgentError
from kagura.observability import EventStore, Telemetry, TelemetryCollector, set_global_telemetry

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "fixtures" / "store_v1"


@pytest.fixture
def store(tmp_path):
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    yield store
    store.close()


@pytest.fixture
def collector(store):
    return TelemetryCollector(store)


def columns(db: Path, run_id: str) -> tuple:
    """session_id, user_id, tags, metadata of one run, read with plain sqlite3."""
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT session_id, user_id, tags, metadata FROM executions WHERE id = ?", (run_id,)
        ).fetchone()
    finally:
        con.close()


def test_context_values_reach_the_run_and_its_nested_runs(store, collector):
    with kagura.context(session_id="s1", user_id="ann", tags=["beta"], metadata={"plan": "pro"}):
        with collector.recording("outer") as outer:
            with collector.recording("inner", tags=["retrieval"], metadata={"k": 3}) as inner:
                pass
    with collector.recording("outside") as outside:
        pass
    assert columns(store.path, outer.id) == ("s1", "ann", '{"beta": true}', '{"plan": "pro"}')
    session, user, tags, metadata = columns(store.path, inner.id)
    assert (session, user) == ("s1", "ann")
    assert json.loads(tags) == {"beta": True, "retrieval": True}
    assert json.loads(metadata) == {"plan": "pro", "k": 3}
    assert columns(store.path, outside.id) == (None, None, None, None)
    got = store.get_execution(inner.id)
    assert got["session_id"] == "s1" and got["user_id"] == "ann"
    assert got["metadata"] == {"plan": "pro", "k": 3}


def test_blocks_nest_inner_ids_win_tags_add_up_metadata_merges(store, collector):
    with kagura.context(session_id="s1", user_id="ann", tags=["a"], metadata={"x": 1, "y": 1}):
        with kagura.context(user_id="bob", tags=["b", "a"], metadata={"y": 2}) as ctx:
            assert ctx.tags == ("a", "b")
            with collector.recording("run") as run:
                pass
        with collector.recording("after") as after:
            pass
    session, user, tags, metadata = columns(store.path, run.id)
    assert (session, user) == ("s1", "bob")
    assert json.loads(tags) == {"a": True, "b": True}
    assert json.loads(metadata) == {"x": 1, "y": 2}
    assert columns(store.path, after.id)[:2] == ("s1", "ann")


def test_concurrent_tasks_and_threads_each_keep_their_own_context(store, collector):
    async def one(user: str) -> str:
        with kagura.context(user_id=user, session_id=f"sess-{user}"):
            await asyncio.sleep(0.01)  # the others run meanwhile
            async with collector.arecording("task") as run:
                await asyncio.sleep(0.01)
            # a thread given the context (asyncio.to_thread copies it)
            return run.id, await asyncio.to_thread(in_thread)

    def in_thread() -> str:
        with collector.recording("in_thread") as run:
            pass
        return run.id

    async def main():
        return await asyncio.gather(*(one(u) for u in ("ann", "bob", "cy")))

    results = asyncio.run(main())
    for user, (task_id, thread_id) in zip(("ann", "bob", "cy"), results, strict=True):
        assert columns(store.path, task_id)[:2] == (f"sess-{user}", user)
        assert columns(store.path, thread_id)[:2] == (f"sess-{user}", user)

    # A pool thread sees the context it is handed (copy_context), and only that one.
    with kagura.context(user_id="dee"), ThreadPoolExecutor(2) as pool:
        ctx = contextvars.copy_context()
        handed = pool.submit(ctx.run, in_thread).result()
    assert columns(store.path, handed)[1] == "dee"
    plain: list[str] = []
    with kagura.context(user_id="eve"):
        t = threading.Thread(target=lambda: plain.append(in_thread()))
        t.start()
        t.join()
    assert columns(store.path, plain[0])[1] is None  # a bare thread starts with an empty context


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"session_id": ""}, "session_id must be a non-empty string"),
        ({"user_id": 7}, "user_id must be a non-empty string"),
        ({"tags": "beta"}, "tags must be a list of strings"),
        ({"tags": ["ok", ""]}, "each tag must be a non-empty string"),
        ({"metadata": ["x"]}, "metadata must be a dict"),
    ],
)
def test_bad_context_values_are_refused_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kagura.context(**kwargs)


def test_agent_tags_and_metadata_are_recorded_with_the_context(store):
    set_global_telemetry(Telemetry(store))
    try:

        @kagura.agent(model="gpt-4o-mini", mock_response="hi", tags=["faq"], metadata={"v": 2})
        async def answer(q: str) -> str:
            """Answer {{ q }}"""

        async def main():
            with kagura.context(session_id="chat-1", user_id="ann", metadata={"v": 1, "w": 0}):
                await answer("a")
            await answer("b")

        asyncio.run(main())
    finally:
        set_global_telemetry(None)
    runs = {r["kwargs"]["q"]: r for r in store.get_executions()}
    assert runs["a"]["session_id"] == "chat-1" and runs["a"]["user_id"] == "ann"
    assert runs["a"]["tags"] == {"faq": True}
    assert runs["a"]["metadata"] == {"v": 2, "w": 0}  # the agent's own value wins
    assert runs["b"]["session_id"] is None and runs["b"]["metadata"] == {"v": 2}
    with pytest.raises(AgentError, match="tags must be a list"):

        @kagura.agent(model="gpt-4o-mini", tags="faq")
        async def bad(q: str) -> str:
            """{{ q }}"""


def test_secret_metadata_is_redacted(store, collector):
    with kagura.context(metadata={"api_key": "sk-live-0123456789abcdef0123"}):
        with collector.recording("run") as run:
            pass
    assert "sk-live" not in columns(store.path, run.id)[3]


def _record(collector, agent, user=None, session=None, tags=None, cost=0.0):
    with kagura.context(user_id=user, session_id=session, tags=tags):
        with collector.recording(agent):
            collector.record_llm_call("m", 10, 5, 0.1, cost=cost)


def test_cost_by_user_session_tag_and_where_over_tail_and_lake(store, collector):
    _record(collector, "a", user="ann", session="s1", tags=["beta"], cost=1.0)
    _record(collector, "a", user="ann", session="s2", cost=2.0)
    store.compact()  # these two are now in the lake
    _record(collector, "b", user="bob", session="s2", tags=["beta", "team=x"], cost=4.0)
    _record(collector, "b", cost=8.0)
    assert len(store.segments()) == 1

    by_user = {r["user_id"]: (r["calls"], r["cost"]) for r in store.cost_by_user().to_dicts()}
    assert by_user == {"ann": (2, 3.0), "bob": (1, 4.0), None: (1, 8.0)}
    by_session = {r["session_id"]: r["cost"] for r in store.cost_by_session().to_dicts()}
    assert by_session == {"s1": 1.0, "s2": 6.0, None: 8.0}
    by_tag = {r["tag"]: (r["calls"], r["cost"]) for r in store.cost_by_tag().to_dicts()}
    # "team=x" is a label whose text holds "=": stored as the key "team=x" with value true.
    assert by_tag == {"beta": (2, 5.0), "team=x": (1, 4.0)}

    assert store.where(user_id="ann").get_summary_stats()["total_executions"] == 2
    assert store.where(session_id="s2").get_summary_stats()["total_cost"] == 6.0
    assert store.where(tag="beta").get_summary_stats()["total_cost"] == 5.0
    assert [r["user_id"] for r in store.where(session_id="s2").get_executions()] == ["bob", "ann"]
    assert store.where(user_id="nobody").get_executions() == []
    # events follow their runs: one LLM call per run
    models = store.where(user_id="ann").cost_by_model_rows()
    assert [(r["calls"], r["cost"]) for r in models] == [(2, 3.0)]


def test_key_value_tags_filter_by_key_or_by_key_and_value(store, collector):
    for value, cost in (("a", 1.0), ("b", 2.0)):
        with collector.recording("run", tags={"team": value}):
            collector.record_llm_call("m", 1, 1, 0.1, cost=cost)
    assert store.where(tag="team=b").get_summary_stats()["total_cost"] == 2.0
    assert store.where(tag="team").get_summary_stats()["total_cost"] == 3.0
    by_tag = {r["tag"]: r["cost"] for r in store.cost_by_tag().to_dicts()}
    assert by_tag == {"team=a": 1.0, "team=b": 2.0}


def test_roots_only_leaves_out_nested_runs(store, collector):
    with collector.recording("parent"), collector.recording("child"):
        pass
    assert [r["agent_name"] for r in store.get_executions(roots_only=True)] == ["parent"]
    assert {r["agent_name"] for r in store.get_executions()} == {"parent", "child"}


def test_an_upgraded_old_store_reads_old_segments_beside_new_columns(tmp_path):
    copy = tmp_path / "store_v1"
    shutil.copytree(FIXTURE, copy)
    store = EventStore(copy / "telemetry.db", auto_compact=False)
    before = store.get_summary_stats()["total_executions"]
    collector = TelemetryCollector(store)
    _record(collector, "new", user="ann", cost=0.5)
    store.compact()  # old segments (no session/user columns) and a new one, listed together
    by_user = {r["user_id"]: r["calls"] for r in store.cost_by_user().to_dicts()}
    assert by_user == {"ann": 1, None: before}
    assert store.where(user_id="ann").get_summary_stats()["total_cost"] == 0.5
    store.close()


def test_budget_by_user_lists_each_users_day_and_month(store, collector):
    import datetime

    now = datetime.datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)
    noon = now.timestamp()
    yesterday = noon - 86400 if now.day > 1 else None
    for user, at, cost in (
        ("ann", noon - 60, 3.0),
        ("ann", noon - 120, 2.5),
        ("bob", noon - 60, 1.0),
    ):
        row_id = f"exec_{user}_{int(at)}_{cost}"
        store.append(
            {
                **_row(row_id, at, cost),
                "user_id": user,
            },
            [],
        )
    if yesterday is not None:
        store.append({**_row("exec_bob_old", yesterday, 9.0), "user_id": "bob"}, [])
    rows = store.budget_by_user(daily=5.0, monthly=6.0, now=noon)
    got = {r["user_id"]: r for r in rows}
    assert [r["user_id"] for r in rows] == ["ann", "bob"]  # most spent today first
    assert got["ann"]["today_cost"] == 5.5 and got["ann"]["daily_exceeded"] is True
    assert got["bob"]["today_cost"] == 1.0 and got["bob"]["daily_exceeded"] is False
    if yesterday is not None:
        assert got["bob"]["month_cost"] == 10.0 and got["bob"]["monthly_exceeded"] is True
    with pytest.raises(ValueError, match="must not be negative"):
        store.budget_by_user(daily=-1)


def _row(run_id, at, cost):
    from kagura.observability.store.rows import execution_row

    return execution_row(
        id=run_id,
        agent_name="a",
        started_at=at,
        ended_at=at + 1,
        status="completed",
        total_cost=cost,
        llm_calls=1,
    )
