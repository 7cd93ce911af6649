"""A naive telemetry store built the way Kagura's original one was: the baseline of the benchmarks.

A new sqlite3 connection per call, the default rollback journal, one commit
per insert, one row per execution with its events and metrics as JSON blobs,
indexes on agent_name and started_at; every question is a SELECT followed by
json.loads and Python loops. Only the benchmarks use it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    agent_name TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration REAL,
    status TEXT,
    error TEXT,
    kwargs TEXT,
    events TEXT,
    metrics TEXT
);
CREATE INDEX IF NOT EXISTS idx_agent_name ON executions(agent_name);
CREATE INDEX IF NOT EXISTS idx_started_at ON executions(started_at);
"""

_INSERT = (
    "INSERT OR REPLACE INTO executions "
    "(id, agent_name, started_at, ended_at, duration, status, error, kwargs, events, metrics) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def blob_row(row: dict[str, Any], events: list[dict[str, Any]]) -> tuple:
    """The naive store's row for one execution row and its event rows (Kagura's dict shape as JSON)."""
    metrics = {
        "total_cost": row["total_cost"] or 0.0,
        "total_tokens": row["total_tokens"],
        "llm_calls": row["llm_calls"],
        "tool_calls": row["tool_calls"],
    }
    blobs = []
    for event in events:
        data = json.loads(event["data"]) if event["data"] else {}
        for key in (
            "name",
            "duration",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost",
            "status",
        ):
            if event[key] is not None:
                data[key] = event[key]
        blobs.append({"type": event["type"], "timestamp": event["started_at"], "data": data})
    return (
        row["id"],
        row["agent_name"],
        row["started_at"],
        row["ended_at"],
        row["duration"],
        row["status"],
        row["error"],
        row["kwargs"] or "{}",
        json.dumps(blobs),
        json.dumps(metrics),
    )


class NaiveStore:
    """Kagura's original EventStore, reduced to what the benchmarks compare."""

    def __init__(self, db_path: str | Path):
        self.db_path = str(db_path)
        with sqlite3.connect(self.db_path) as conn:
            conn.executescript(SCHEMA)

    # --- writing: a connection and a commit per execution ---

    def save(self, row: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Insert one execution: open, insert, commit, close."""
        conn = sqlite3.connect(self.db_path)
        try:
            conn.execute(_INSERT, blob_row(row, events))
            conn.commit()
        finally:
            conn.close()

    def bulk_load(self, rows: list[tuple]) -> None:
        """Insert many prepared blob rows in one transaction (only to build big benchmark stores)."""
        conn = sqlite3.connect(self.db_path)
        try:
            conn.execute("PRAGMA synchronous = OFF")
            conn.executemany(_INSERT, rows)
            conn.commit()
        finally:
            conn.close()

    # --- reading: SELECT, then json.loads and Python ---

    def _row_to_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "agent_name": row["agent_name"],
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "duration": row["duration"],
            "status": row["status"],
            "error": row["error"],
            "kwargs": json.loads(row["kwargs"]) if row["kwargs"] else {},
            "events": json.loads(row["events"]) if row["events"] else [],
            "metrics": json.loads(row["metrics"]) if row["metrics"] else {},
        }

    def get_executions(self, agent_name=None, status=None, since=None, limit: int | None = 100):
        """Executions newest first; limit None returns every match."""
        query = "SELECT * FROM executions WHERE 1=1"
        params: list[Any] = []
        if agent_name:
            query += " AND agent_name = ?"
            params.append(agent_name)
        if status:
            query += " AND status = ?"
            params.append(status)
        if since:
            query += " AND started_at >= ?"
            params.append(since)
        query += " ORDER BY started_at DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with sqlite3.connect(self.db_path) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(query, params).fetchall()
        return [self._row_to_dict(r) for r in rows]

    def get_execution(self, execution_id: str):
        """One execution by full id, or by prefix (LIKE, a scan) when no id matches; None if absent."""
        with sqlite3.connect(self.db_path) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                rows = conn.execute(
                    "SELECT * FROM executions WHERE id LIKE ? LIMIT 2", (execution_id + "%",)
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return self._row_to_dict(row) if row is not None else None

    def get_summary_stats(self, agent_name=None, since=None) -> dict[str, Any]:
        """Kagura's summary, computed in Python over every matching execution."""
        executions = self.get_executions(agent_name=agent_name, since=since, limit=None)
        total = len(executions)
        completed = sum(1 for e in executions if e["status"] == "completed")
        failed = sum(1 for e in executions if e["status"] == "failed")
        durations = [e["duration"] for e in executions if e["duration"] is not None]
        return {
            "total_executions": total,
            "completed": completed,
            "failed": failed,
            "avg_duration": sum(durations) / len(durations) if durations else 0.0,
            "total_cost": sum(e["metrics"].get("total_cost", 0.0) for e in executions),
            "total_tokens": sum(e["metrics"].get("total_tokens", 0) for e in executions),
            "llm_calls": sum(e["metrics"].get("llm_calls", 0) for e in executions),
            "tool_calls": sum(e["metrics"].get("tool_calls", 0) for e in executions),
            "success_rate": 100.0 * completed / total if total else 0.0,
        }

    def cost_by_agent(self, since=None) -> dict[str, dict[str, Any]]:
        """Cost, calls and tokens per agent, summed in Python."""
        out: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost": 0.0})
        for e in self.get_executions(since=since, limit=None):
            item = out[e["agent_name"]]
            item["calls"] += 1
            item["tokens"] += e["metrics"].get("total_tokens", 0)
            item["cost"] += e["metrics"].get("total_cost", 0.0)
        return dict(out)

    def cost_by_date(self, since=None) -> dict[str, dict[str, Any]]:
        """Cost, calls and tokens per local day, summed in Python."""
        out: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost": 0.0})
        for e in self.get_executions(since=since, limit=None):
            item = out[datetime.fromtimestamp(e["started_at"]).date().isoformat()]
            item["calls"] += 1
            item["tokens"] += e["metrics"].get("total_tokens", 0)
            item["cost"] += e["metrics"].get("total_cost", 0.0)
        return dict(out)

    def duration_percentiles(self, since=None) -> dict[str, tuple[float, float]]:
        """(p50, p95) duration per agent, sorted in Python (linear interpolation)."""
        by_agent: dict[str, list[float]] = defaultdict(list)
        for e in self.get_executions(since=since, limit=None):
            if e["duration"] is not None:
                by_agent[e["agent_name"]].append(e["duration"])
        return {agent: (_quantile(v, 0.5), _quantile(v, 0.95)) for agent, v in by_agent.items()}


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    pos = (len(values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)
