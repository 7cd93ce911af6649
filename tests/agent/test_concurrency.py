"""Nesting and concurrency: every call recorded once, with the right parent, trace, status and cost."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import litellm

from kagura import agent
from kagura.agent import AgentOutputError
from kagura.observability import EventStore, get_global_telemetry
from kagura.observability.recording.collector import flush


def recorded() -> EventStore:
    """The default store, once every run recorded so far is written."""
    flush()
    return EventStore()


def mock_cost(model: str, prompt_tokens: int = 10, completion_tokens: int = 20) -> float:
    """What litellm's price map says a mock call costs (mock usage: 10 prompt, 20 completion tokens)."""
    entry = litellm.model_cost[model]
    return (
        prompt_tokens * entry["input_cost_per_token"]
        + completion_tokens * entry["output_cost_per_token"]
    )


def all_executions() -> list[dict]:
    return recorded().get_executions(limit=100_000)


def test_an_agent_used_as_a_tool_is_a_child_run(llm):
    llm.push(
        llm.tool_calls(("researcher", {"topic": "owls"})),
        llm.text(
            "Owls are nocturnal.", prompt_tokens=7, completion_tokens=3
        ),  # the researcher's reply
        llm.text("Summary: owls.", prompt_tokens=40, completion_tokens=4),
    )

    @agent(model="openai/m", **llm.kwargs())
    async def researcher(topic: str) -> str:
        """Research {{ topic }}."""

    @agent(model="openai/m", tools=[researcher], **llm.kwargs())
    async def writer(subject: str) -> str:
        """Write about {{ subject }}."""

    assert asyncio.run(writer("birds")) == "Summary: owls."
    store = recorded()
    [parent] = store.get_executions(agent_name="writer")
    [child] = store.get_executions(agent_name="researcher")
    assert child["parent_id"] == parent["id"]
    assert child["trace_id"] == parent["id"] == parent["trace_id"]
    assert parent["parent_id"] is None
    assert child["kwargs"] == {"topic": "owls"}
    assert parent["started_at"] <= child["started_at"] <= child["ended_at"] <= parent["ended_at"]
    # The parent's counters are its own calls; the child's tokens stay with the child.
    assert parent["metrics"]["prompt_tokens"] == 20 + 40
    assert child["metrics"]["prompt_tokens"] == 7
    trace = store.get_trace(parent["trace_id"])
    assert [e["agent_name"] for e in trace] == ["writer", "researcher"]
    assert store.get_execution(parent["id"])["children"][0]["id"] == child["id"]


def test_thousand_concurrent_calls_some_nested_some_failing():
    @agent(model="gpt-4o-mini", mock_response="ok")
    async def child(q: str) -> str:
        """{{ q }}"""

    @agent(model="gpt-4o", mock_response="not a number")
    async def failing(q: str) -> int:
        """{{ q }}"""

    @get_global_telemetry().instrument("parent")
    async def parent(i: int) -> list[str]:
        return list(await asyncio.gather(child(f"p{i}-a"), child(f"p{i}-b")))

    def call(i: int):
        if i % 10 == 0:
            return failing(f"f{i}")
        if i % 5 == 1:
            return parent(i)
        return child(f"c{i}")

    async def main():
        return await asyncio.gather(*(call(i) for i in range(1000)), return_exceptions=True)

    results = asyncio.run(main())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 100
    assert all(isinstance(r, AgentOutputError) for r in failures)

    rows = all_executions()
    n_fail, n_parent = 100, 200
    n_direct = 1000 - n_fail - n_parent
    assert len(rows) == n_fail + n_parent + 2 * n_parent + n_direct
    assert len({r["id"] for r in rows}) == len(rows)

    by_q = {}
    parents = {}
    for row in rows:
        if row["agent_name"] == "parent":
            assert row["kwargs"]["i"] not in parents  # recorded once
            parents[row["kwargs"]["i"]] = row
        else:
            q = row["kwargs"]["q"]
            assert q not in by_q  # recorded once
            by_q[q] = row

    gpt4o_mini, gpt4o = mock_cost("gpt-4o-mini"), mock_cost("gpt-4o")
    for i in range(1000):
        if i % 10 == 0:
            row = by_q[f"f{i}"]
            assert (row["status"], row["error_type"], row["parent_id"]) == (
                "failed",
                "AgentOutputError",
                None,
            )
            assert row["metrics"]["total_cost"] == gpt4o
        elif i % 5 == 1:
            top = parents[i]
            assert (top["status"], top["parent_id"], top["trace_id"]) == (
                "completed",
                None,
                top["id"],
            )
            for suffix in "ab":
                row = by_q[f"p{i}-{suffix}"]
                assert row["parent_id"] == top["id"]
                assert row["trace_id"] == top["id"]
                assert row["status"] == "completed"
                assert row["metrics"]["total_cost"] == gpt4o_mini
        else:
            row = by_q[f"c{i}"]
            assert (row["status"], row["parent_id"], row["trace_id"]) == (
                "completed",
                None,
                row["id"],
            )
            assert row["metrics"]["total_cost"] == gpt4o_mini
            assert row["metrics"]["total_tokens"] == 30

    stats = recorded().get_summary_stats()
    assert stats["total_executions"] == len(rows)
    assert stats["failed"] == 100
    expected_cost = 100 * gpt4o + (2 * n_parent + n_direct) * gpt4o_mini
    assert abs(stats["total_cost"] - expected_cost) < 1e-12


def test_context_follows_threads_that_copy_it():
    @agent(model="gpt-4o-mini", mock_response="ok")
    async def worker(q: str) -> str:
        """{{ q }}"""

    telemetry = get_global_telemetry()

    @telemetry.instrument("orchestrator")
    async def orchestrator() -> None:
        # asyncio.to_thread copies the context: the thread's run is a child.
        await asyncio.to_thread(asyncio.run, worker("to_thread"))
        # An executor does not copy it by itself; copy_context().run does.
        ctx = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(ctx.run, asyncio.run, worker("copied")).result()
        # A bare thread starts with an empty context: a new trace.
        thread = threading.Thread(target=asyncio.run, args=(worker("bare"),))
        thread.start()
        thread.join()

    asyncio.run(orchestrator())
    rows = {r["kwargs"].get("q", r["agent_name"]): r for r in all_executions()}
    top = rows["orchestrator"]
    assert rows["to_thread"]["parent_id"] == top["id"]
    assert rows["copied"]["parent_id"] == top["id"]
    assert rows["bare"]["parent_id"] is None
    assert rows["bare"]["trace_id"] == rows["bare"]["id"]


def test_many_threads_each_running_agents():
    @agent(model="gpt-4o-mini", mock_response="ok")
    async def job(q: str) -> str:
        """{{ q }}"""

    def run_many(t: int) -> None:
        async def batch():
            await asyncio.gather(*(job(f"{t}-{i}") for i in range(25)))

        asyncio.run(batch())

    threads = [threading.Thread(target=run_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = all_executions()
    assert sorted(r["kwargs"]["q"] for r in rows) == sorted(
        f"{t}-{i}" for t in range(8) for i in range(25)
    )
    assert {r["status"] for r in rows} == {"completed"}
