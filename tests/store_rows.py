"""Small builders of telemetry rows for store tests, with hand-checkable numbers."""

from __future__ import annotations

from kagura.observability.store.rows import (
    event_row,
    execution_row,
    new_execution_id,
    totals_from_events,
)


def run(
    agent: str,
    started_at: float,
    duration: float = 1.0,
    status: str = "completed",
    costs: tuple[float | None, ...] = (0.001,),
    tokens: tuple[int, int] = (100, 20),
    tools: int = 0,
    parent: dict | None = None,
    error: str | None = None,
) -> tuple[dict, list[dict]]:
    """One execution with an llm_call per cost and `tools` tool calls."""
    eid = new_execution_id(at=started_at)
    events = []
    for i, cost in enumerate(costs):
        events.append(
            event_row(
                eid,
                len(events),
                "llm_call",
                started_at + 0.01 * i,
                name="gpt-4o-mini",
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                cost=cost,
                duration=0.1,
            )
        )
    for i in range(tools):
        events.append(
            event_row(
                eid,
                len(events),
                "tool_call",
                started_at + 0.5 + 0.01 * i,
                name="search",
                duration=0.05,
                query=f"q{i}",
            )
        )
    row = execution_row(
        id=eid,
        trace_id=parent["trace_id"] if parent else eid,
        parent_id=parent["id"] if parent else None,
        agent_name=agent,
        started_at=started_at,
        ended_at=started_at + duration,
        status=status,
        error=error,
        error_type="ValueError" if error else None,
        kwargs={"text": "hello"},
        **totals_from_events(events),
    )
    return row, events
