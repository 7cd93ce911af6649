"""A script written against Kagura's own observability module, run unchanged.

It uses only Kagura's names and module paths (kagura.observability.instrumentation,
kagura.config.paths, EventStore.db_path, data["kwargs"]) and patches
get_data_dir the way Kagura's tests do. tests/observability/test_kagura_api.py
runs it in a fresh interpreter; it prints "ok" at the end.
"""

import asyncio
import tempfile
from pathlib import Path
from unittest.mock import patch

from kagura.config.paths import get_cache_dir, get_config_dir, get_data_dir
from kagura.observability import EventStore, TelemetryCollector
from kagura.observability.instrumentation import (
    Telemetry,
    get_global_telemetry,
    set_global_telemetry,
)

# The folders exist as functions returning Paths.
for folder in (get_data_dir(), get_cache_dir(), get_config_dir()):
    assert isinstance(folder, Path), folder

# Tests move the store by patching get_data_dir.
with tempfile.TemporaryDirectory() as tmp:
    with patch("kagura.config.paths.get_data_dir", return_value=Path(tmp)):
        moved = EventStore()
        assert moved.db_path == Path(tmp) / "telemetry.db", moved.db_path
        moved.close()

store = EventStore(":memory:")
assert store.db_path == ":memory:"

collector = TelemetryCollector(store)
telemetry = Telemetry(collector)
assert telemetry.get_collector() is collector
assert "TelemetryCollector" in repr(telemetry), repr(telemetry)


@telemetry.instrument("research_agent")
async def research_agent(query: str) -> str:
    collector = telemetry.get_collector()
    collector.record_llm_call("gpt-4o-mini", 100, 50, 0.4, 0.0001)
    collector.record_tool_call("web_search", 0.3, query=query, limit=5)
    collector.record_memory_operation("store", 0.01, key="last_query")
    return f"Result: {query}"


assert asyncio.run(research_agent("owls")) == "Result: owls"

executions = store.get_executions(agent_name="research_agent")
assert len(executions) == 1
execution = store.get_execution(executions[0]["id"][:12])
assert execution["status"] == "completed"
assert execution["kwargs"] == {"query": "owls"}
by_type = {event["type"]: event for event in execution["events"]}
assert by_type["tool_call"]["data"]["tool_name"] == "web_search"
assert by_type["tool_call"]["data"]["kwargs"] == {"query": "owls", "limit": 5}
assert by_type["memory_operation"]["data"]["operation"] == "store"
assert by_type["memory_operation"]["data"]["kwargs"] == {"key": "last_query"}
assert by_type["llm_call"]["data"]["model"] == "gpt-4o-mini"

stats = store.get_summary_stats(agent_name="research_agent")
assert stats["total_executions"] == 1 and stats["completed"] == 1

# A Kagura-shaped dict (keyword arguments under data["kwargs"]) saves and reads back.
asyncio.run(
    store.save_execution(
        {
            "id": "exec_saved",
            "agent_name": "saved_agent",
            "started_at": 1_700_000_000.0,
            "ended_at": 1_700_000_001.0,
            "duration": 1.0,
            "status": "completed",
            "kwargs": {"x": 1},
            "events": [
                {
                    "type": "tool_call",
                    "timestamp": 1_700_000_000.5,
                    "data": {"tool_name": "calc", "duration": 0.1, "kwargs": {"expr": "1+1"}},
                }
            ],
            "metrics": {},
        }
    )
)
saved = store.get_execution("exec_saved")
assert saved["events"][0]["data"]["kwargs"] == {"expr": "1+1"}, saved["events"]

# The global telemetry can be replaced and read back.
set_global_telemetry(telemetry)
assert get_global_telemetry() is telemetry
set_global_telemetry(None)
assert isinstance(get_global_telemetry(), Telemetry)

store.close()
print("ok")
