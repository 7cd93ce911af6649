"""Build a small telemetry store for the upgrade tests, and the truth it must keep.

Run with the kagura of the schema version being frozen on the path, e.g.
`PYTHONPATH=<export of that commit> python tests/reliability/make_store_fixture.py data/fixtures/store_v1`.
It writes `telemetry.db` (tail) and `telemetry/` (lake) there, plus `expected.json`,
computed from the generated runs themselves, never read back from the store.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

# Fixed times (2024-03-01 .. 2024-03-04 UTC), so the fixture never changes when rebuilt.
T0 = 1709251200.0
AGENTS = ("translator", "chatbot", "researcher", "要約エージェント", "agent 'quoted'; --")


def build(folder: Path, seed: int = 6) -> dict:
    """Write the store into `folder`; return the expected content."""
    from kagura.observability import EventStore
    from kagura.observability.store.rows import (
        event_row,
        execution_row,
        new_execution_id,
        totals_from_events,
    )
    from kagura.observability.store.tail import SCHEMA_VERSION

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("telemetry.db", "telemetry.db-wal", "telemetry.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    expected: dict[str, dict] = {}

    def runs(count: int, day: int) -> list[tuple[dict, list[dict]]]:
        pairs = []
        for _ in range(count):
            started = T0 + day * 86400 + rng.uniform(0, 86000)
            run_id = new_execution_id(at=started)
            agent = rng.choice(AGENTS)
            status = rng.choice(("completed",) * 8 + ("failed", "cancelled"))
            events = []
            for seq in range(rng.randint(0, 3)):
                prompt, completion = rng.randint(1, 500), rng.randint(1, 500)
                priced = rng.random() < 0.9
                events.append(
                    event_row(
                        run_id,
                        seq,
                        "llm_call",
                        started + seq * 0.5,
                        name="gpt-4o-mini" if priced else "local/unknown",
                        duration=0.25,
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        # Multiples of 1/1024 add up exactly in any order.
                        cost=rng.randint(1, 64) / 1024 if priced else None,
                        status="ok",
                    )
                )
            if rng.random() < 0.3:
                events.append(
                    event_row(
                        run_id, len(events), "tool_call", started + 2, name="search", duration=0.1
                    )
                )
            totals = totals_from_events(events)
            row = execution_row(
                id=run_id,
                agent_name=agent,
                started_at=started,
                ended_at=started + 3.0,
                status=status,
                error="boom" if status == "failed" else None,
                error_type="RuntimeError" if status == "failed" else None,
                kwargs={"text": f"hello {rng.randint(0, 999)}", "lang": "日本語"},
                tags={"project": rng.choice(("a", "b"))},
                model="gpt-4o-mini",
                host="fixture-host",
                pid=1,
                **totals,
            )
            pairs.append((row, events))
            expected[run_id] = {
                "agent_name": agent,
                "status": status,
                "total_tokens": totals["total_tokens"],
                "total_cost": totals["total_cost"],
                "events": len(events),
            }
        return pairs

    # Three compactions over three days give several small segments per date.
    for _batch in range(3):
        for day in range(3):
            store.append_many(runs(25, day))
        store.compact()
    store.append_many(runs(40, 2) + runs(40, 3))  # left in the tail
    version = SCHEMA_VERSION
    segments = len(store.segments())
    tail = store.tail_size()
    store.close()
    total_cost = sum(r["total_cost"] or 0.0 for r in expected.values())
    return {
        "schema_version": version,
        "segments": segments,
        "tail_executions": tail["settled"] + tail["running"],
        "executions": len(expected),
        "events": sum(r["events"] for r in expected.values()),
        "total_tokens": sum(r["total_tokens"] for r in expected.values()),
        "total_cost": total_cost,
        "runs": expected,
    }


if __name__ == "__main__":
    target = Path(sys.argv[1])
    truth = build(target)
    (target / "expected.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
    print(
        f"schema {truth['schema_version']}: {truth['executions']} runs, {truth['segments']} segments, "
        f"{truth['tail_executions']} in the tail"
    )
