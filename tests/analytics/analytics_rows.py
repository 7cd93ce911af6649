"""Rows for the analytics tests: executions and LLM calls built with the store's row model."""

from __future__ import annotations

import json
from pathlib import Path

from kagura.observability.store.rows import event_row, execution_row, new_execution_id

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
    return execution_row(
        id=new_execution_id(at=started_at),
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
    return event_row(
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


def forget_oldest_rollup(store) -> None:
    """Make the store's oldest segment one written before segments had rollups: its rollup
    file gone and the manifest listing none, as such a lake reads."""
    import sqlite3

    oldest = store.segments()[0]
    (store.lake / oldest.rollup_path).unlink()
    con = sqlite3.connect(store.path)
    with con:
        con.execute("UPDATE segments SET rollup_path = NULL WHERE id = ?", (oldest.id,))
    con.close()
