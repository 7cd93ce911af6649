"""Recorded cost equals the price map's per-token prices times the tokens, for every fixture model."""

from __future__ import annotations

import asyncio

import litellm
import pytest

from kagura import agent
from kagura.observability import EventStore
from kagura.observability.recording.collector import flush
from kagura.synthetic import fixtures

USAGE = [(1234, 56), (17, 980), (50_000, 1)]


@pytest.mark.parametrize("slot", sorted(fixtures.MODEL_CANDIDATES))
def test_recorded_cost_matches_the_price_map(slot):
    model = fixtures.resolve_models()[slot]
    entry = litellm.model_cost[model]
    expected = [
        p * entry["input_cost_per_token"] + c * entry["output_cost_per_token"] for p, c in USAGE
    ]

    async def main():
        for prompt, completion in USAGE:
            reply = {
                "choices": [{"message": {"role": "assistant", "content": "ok"}}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }

            @agent(model=model, mock_response=reply, name="priced")
            async def priced(q: str) -> str:
                """{{ q }}"""

            await priced(f"{prompt}/{completion}")

    asyncio.run(main())
    flush()
    store = EventStore()
    rows = {r["kwargs"]["q"]: r for r in store.get_executions(agent_name="priced")}
    for (prompt, completion), cost in zip(USAGE, expected, strict=True):
        row = rows[f"{prompt}/{completion}"]
        assert row["model"] == model
        assert row["metrics"]["total_cost"] == pytest.approx(cost, rel=1e-12)
        assert row["metrics"]["prompt_tokens"] == prompt
        assert row["metrics"]["completion_tokens"] == completion
        [event] = store.get_execution(row["id"])["events"]
        assert event["cost"] == pytest.approx(cost, rel=1e-12)
    assert store.get_summary_stats(agent_name="priced")["total_cost"] == pytest.approx(
        sum(expected), rel=1e-12
    )
