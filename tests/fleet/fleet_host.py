"""One simulated host of a fleet: writes batches of runs, compacts each into the shared lake.

Run as a process: `python fleet_host.py LAKE HOST BATCHES SIZE RECORD`. After each
compaction returns it appends to RECORD (JSON lines) what it has moved so far,
counted here from the rows it made, not by the store.
"""

from __future__ import annotations

import json
import sys
import time

from kagura.observability import EventStore
from kagura.observability.store.rows import (
    event_row,
    execution_row,
    new_execution_id,
    totals_from_events,
)

DAY = 86400.0


def rows(host: str, batch: int, size: int, base: float) -> tuple[list, int, int]:
    """One batch of runs of `host`; (pairs, cost in micro-dollars, events)."""
    pairs = []
    micros = 0
    events = 0
    for j in range(size):
        # Batches cross midnight: some compactions write segments of two dates at once.
        started = base + batch * 0.4 * DAY + j
        eid = new_execution_id(at=started)
        cost_micros = 1000 + 10 * j  # 0.001 + 0.00001 * j dollars
        event = event_row(
            eid,
            0,
            "llm_call",
            started,
            name="gpt-4o-mini",
            prompt_tokens=100,
            completion_tokens=20,
            cost=cost_micros / 1e6,
            duration=0.1,
        )
        row = execution_row(
            id=eid,
            trace_id=eid,
            agent_name=f"agent_{j % 3}",
            started_at=started,
            ended_at=started + 1.0,
            status="completed",
            host=host,
            **totals_from_events([event]),
        )
        pairs.append((row, [event]))
        micros += cost_micros
        events += 1
    return pairs, micros, events


def main() -> None:
    lake, host, batches, size, record = sys.argv[1:6]
    base = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    store = EventStore(lake=lake, auto_compact=False)
    runs = micros = events = 0
    with open(record, "a", encoding="utf-8") as out:
        for batch in range(int(batches)):
            pairs, cost, n_events = rows(host, batch, int(size), base)
            store.append_many(pairs)
            report = store.compact()
            assert report["executions"] == len(pairs), report
            runs += len(pairs)
            micros += cost
            events += n_events
            out.write(
                json.dumps({"host": host, "runs": runs, "micros": micros, "events": events}) + "\n"
            )
            out.flush()
            time.sleep(0.05)
    store.close()


if __name__ == "__main__":
    main()
