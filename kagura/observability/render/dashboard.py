"""The live view and the `Dashboard`: fetch rows from an `EventStore`, render them, print them.

The renderers are pure functions of store rows (public dicts) in this package:
formatting.py (how numbers, times and statuses read), tables.py (tables that fit the
width), runs.py, trace.py and cost.py. `Dashboard` asks the store, calls them and
prints; `LiveCounts` keeps the live header cheap at any size.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.text import Text

from kagura.observability.render.cost import (
    COST_ROWS,
    ESTIMATE_WINDOW_DAYS,
    cost_totals,
    render_cost_by_date,
    render_cost_table,
    render_monthly_estimate,
)
from kagura.observability.render.runs import (
    render_list_table,
    render_live,
    render_stats,
)
from kagura.observability.render.trace import render_trace

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore


# --- the dashboard ----------------------------------------------------------------


class LiveCounts:
    """Run counts by status for the live header, cheap at any size.

    Runs that began more than WINDOW seconds before the newest one are counted
    once, and again every REBASE seconds; each frame counts only the runs since
    then (the tail and the newest lake files). So a change to an older run (a long
    run finishing, a prune, a back-dated import) shows within REBASE seconds.
    """

    WINDOW = 600.0
    REBASE = 60.0

    def __init__(self, store: EventStore, agent_name: str | None = None):
        self.store = store
        self.agent_name = agent_name
        self.cut: float | None = None
        self.base: dict[str, int] = {}
        self.base_at = -math.inf
        self._query: bool | None = None

    def counts(self, newest: float | None, now: float | None = None) -> dict[str, int]:
        """{total_executions, completed, failed, running} as of `now`; `newest` is the newest run's start."""
        now = time.time() if now is None else now
        if self.cut is None or now - self.base_at >= self.REBASE:
            self.cut = min(now, newest if newest is not None else now) - self.WINDOW
            self.base = self._count(until=self.cut)
            self.base_at = now
        recent = self._count(since=self.cut)
        merged = {key: self.base.get(key, 0) + recent.get(key, 0) for key in {*self.base, *recent}}
        return {
            "total_executions": sum(merged.values()),
            **{key: merged.get(key, 0) for key in ("completed", "failed", "running")},
        }

    def _count(self, since: float | None = None, until: float | None = None) -> dict[str, int]:
        if self._query is None:
            self._query = "status_counts" in {q["name"] for q in self.store.catalogue()}
        if self._query:  # counting statuses skips the summary's percentiles
            rows = self.store.run(
                "status_counts", agent=self.agent_name, since=since, until=until
            ).rows()
            return {row["status"]: row["runs"] for row in rows}
        stats = self.store.get_summary_stats(agent_name=self.agent_name, since=since, until=until)
        counts = {key: stats.get(key) or 0 for key in ("completed", "failed", "running")}
        counts["other"] = (stats.get("total_executions") or 0) - sum(counts.values())
        return counts


class Dashboard:
    """Prints the telemetry of an EventStore to a rich Console: live view, lists, stats, traces, cost."""

    def __init__(self, store: EventStore | None = None, console: Console | None = None):
        if store is None:
            from kagura.observability.eventstore import EventStore

            store = EventStore()
        self.store = store
        self.console = console or Console(highlight=False)
        self._live_counts: dict[str | None, LiveCounts] = {}

    def _settle(self) -> None:
        """Wait briefly for runs this process recorded to reach the store, so reads include them."""
        collector = sys.modules.get("kagura.observability.recording.collector")
        if collector is not None:  # agents ran here: their rows go through a background writer
            collector.flush(self.store, timeout=2.0)

    # data, shared by the renderers and the CLI's --json

    def live_data(
        self, agent_name: str | None = None, limit: int = 15, now: float | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(run counts by status, newest executions) for one frame of the live view."""
        self._settle()
        rows = self.store.get_executions(agent_name=agent_name, limit=limit)
        counter = self._live_counts.get(agent_name)
        if counter is None:
            counter = self._live_counts[agent_name] = LiveCounts(self.store, agent_name)
        newest = rows[0]["started_at"] if rows else None
        return counter.counts(newest, now), rows

    def trace_data(self, execution_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(the execution with its events and children, every run of its trace)."""
        self._settle()
        execution = self.store.get_execution(execution_id)
        if execution is None:
            return None, []
        return execution, self.store.get_trace(execution.get("trace_id") or execution["id"])

    def cost_data(
        self,
        group_by: str = "agent",
        agent_name: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> dict[str, Any]:
        """{group_by, rows, total, estimate}: cost per group and the monthly projection."""
        self._settle()
        if group_by == "model":  # over LLM calls: runs that began just before `since` count too
            rows = self.store.cost_by_model(since, agent_name, until=until).rows()
        else:
            rows = self.store.run(
                f"cost_by_{group_by}", agent=agent_name, since=since, until=until
            ).rows()
        estimate = dict(
            self.store.monthly_projection(days=ESTIMATE_WINDOW_DAYS, agent_name=agent_name) or {}
        )
        return {
            "group_by": group_by,
            "rows": rows,
            "total": cost_totals(rows),
            "estimate": estimate,
        }

    # printing

    def render_live_frame(
        self,
        agent_name: str | None = None,
        refresh_rate: float | None = None,
        limit: int | None = None,
    ) -> Group:
        """One frame of the live view, sized to the console."""
        if limit is None:
            limit = max(5, min(50, self.console.size.height - 9))
        stats, rows = self.live_data(agent_name, limit)
        return render_live(stats, rows, agent_name=agent_name, refresh_rate=refresh_rate)

    def show_live(
        self,
        agent_name: str | None = None,
        refresh_rate: float = 1.0,
        *,
        once: bool = False,
        limit: int | None = None,
    ) -> None:
        """Show the live view until Ctrl+C (or one frame with once=True)."""
        if once:
            self.console.print(self.render_live_frame(agent_name, None, limit))
            return
        from rich.live import Live

        from kagura.observability.errors import StoreError

        frame = self.render_live_frame(agent_name, refresh_rate, limit)
        try:
            with Live(frame, console=self.console, auto_refresh=False, transient=False) as live:
                while True:
                    time.sleep(refresh_rate)
                    try:
                        frame = self.render_live_frame(agent_name, refresh_rate, limit)
                    except StoreError as error:  # a busy or half-written store: keep the last frame
                        frame = Group(frame, Text(f"refresh failed: {error}", style="red"))
                    live.update(frame, refresh=True)
        except KeyboardInterrupt:
            return

    def show_list(
        self,
        agent_name: str | None = None,
        status: str | None = None,
        limit: int = 20,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> list[dict[str, Any]]:
        """Print the Execution History table; returns the rows shown."""
        self._settle()
        rows = self.store.get_executions(
            agent_name=agent_name, status=status, since=since, limit=limit, until=until
        )
        self.console.print(render_list_table(rows))
        return rows

    def show_stats(
        self,
        agent_name: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> dict[str, Any]:
        """Print the Summary Statistics; returns the stats shown."""
        self._settle()
        stats = self.store.get_summary_stats(agent_name=agent_name, since=since, until=until)
        self.console.print(render_stats(stats, agent_name))
        return stats

    def show_trace(self, execution_id: str) -> dict[str, Any] | None:
        """Print the trace of one execution (id or unique prefix); returns it, or None when unknown."""
        execution, trace = self.trace_data(execution_id)
        if execution is None:
            self.console.print(f"No execution with id {execution_id!r}", style="red")
            return None
        self.console.print(render_trace(execution, trace))
        return execution

    def show_cost_summary(
        self,
        group_by: str = "agent",
        *,
        agent_name: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = COST_ROWS,
    ) -> dict[str, Any]:
        """Print cost by agent (or date, model, user, ...) and the monthly estimate; returns the
        data shown. `limit`: groups shown (the rest add up in one row; None: all)."""
        data = self.cost_data(group_by, agent_name, since, until)
        if group_by == "date":
            self.console.print(render_cost_by_date(data["rows"]))
        else:
            self.console.print(render_cost_table(data["rows"], group_by, limit))
        self.console.print()
        self.console.print(render_monthly_estimate(data["estimate"]))
        return data
