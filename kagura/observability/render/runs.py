"""Runs: the activity table, the list, the live header and the summary stats."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from kagura.observability.render.formatting import (
    STATUS_LOOK,
    fmt_cost,
    fmt_duration,
    fmt_money,
    fmt_percent,
    fmt_time,
    fmt_tokens,
    metric,
    short_id,
    status_text,
)
from kagura.observability.render.tables import Alt, Col, FitTable, panel, ruled

# --- executions -----------------------------------------------------------------


def render_activity_table(
    rows: list[dict[str, Any]],
    title: str = "Recent Activity",
    *,
    show_id: bool = False,
    now: float | None = None,
) -> Panel:
    """A panel of executions (Time, Agent, Status, Duration, Cost[, ID]), newest first as given.

    On a narrow console the status shortens and the agent name is cut first; then
    Duration and Cost go. The id is never cut below the prefix `trace` accepts.
    """
    columns = [
        Col("Time", "number", keep=60, justify="left"),
        Col("Agent", "text", keep=70, min_width=8, max_width=32),
        Col("Status", "text", keep=80),
        Col("Duration", "number", keep=30, short="Dur."),
        Col("Cost", "number", keep=40),
    ]
    # Who a run was for (kagura.context), shown only when some run says.
    people = [
        (label, key)
        for label, key in (("Session", "session_id"), ("User", "user_id"))
        if show_id and any(row.get(key) for row in rows)
    ]
    for label, _ in people:
        columns.append(Col(label, "text", keep=20, min_width=4, max_width=24))
    if show_id:
        columns.append(Col("ID", "id", keep=90, style="cyan"))
    table = FitTable(columns, make=ruled, header_row=True)
    for row in rows:
        running = row.get("status") == "running"
        # A run that never ended (its process died) has no duration to show.
        unended = row.get("status") == "abandoned" and row.get("ended_at") is None
        duration = "-" if unended else fmt_duration(row.get("duration"))
        cells: list[Any] = [
            fmt_time(row.get("started_at"), now),
            row.get("agent_name") or "?",
            Alt(status_text(row.get("status")), status_text(row.get("status"), short=True)),
            Text(duration + "…", style="yellow") if running else duration,
            "…" if running else fmt_cost(metric(row, "total_cost"), metric(row, "unpriced_calls")),
        ]
        cells.extend(row.get(key) or "-" for _, key in people)
        if show_id:
            cells.append(short_id(row.get("id") or ""))
        table.add_row(*cells)
    if not rows:
        table.add_row(Text("no executions", style="dim"), *[""] * (len(columns) - 1))
    return panel(table, title)


def render_list_table(rows: list[dict[str, Any]], now: float | None = None) -> Panel:
    """The "Execution History" panel, with the id to copy into `kagura monitor trace`."""
    return render_activity_table(rows, "Execution History", show_id=True, now=now)


def _title(title: str, agent_name: str | None, gap: str) -> Text:
    """A bold title, followed by the agent it is narrowed to."""
    text = Text(title, style="bold")
    if agent_name:
        text.append(f"{gap}(agent: {agent_name})", style="dim")
    return text


def render_header(stats: dict[str, Any], agent_name: str | None = None) -> Text:
    """The live view's header: title and Total | Completed | Failed (| Running)."""
    text = _title("📊 Kagura Agent Monitor", agent_name, "  ")
    text.append("\n")
    text.append(f"Total: {stats.get('total_executions') or 0:,}")
    for status in _counted(stats, ("completed", "failed", "running")):
        text.append(" | ")
        text.append(
            f"{status.capitalize()}: {stats.get(status) or 0:,}", style=STATUS_LOOK[status][1]
        )
    return text


def _counted(stats: dict[str, Any], statuses: tuple[str, ...]) -> list[str]:
    """`statuses` to show: completed and failed always, the others when some runs have them."""
    return [s for s in statuses if s in ("completed", "failed") or stats.get(s)]


def render_live(
    stats: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    agent_name: str | None = None,
    refresh_rate: float | None = None,
    now: float | None = None,
    note: str | None = None,
) -> Group:
    """One frame of the live view: header, Recent Activity, and a status line."""
    now = time.time() if now is None else now
    parts: list[RenderableType] = [
        render_header(stats, agent_name),
        Text(""),
        render_activity_table(rows, now=now),
    ]
    footer = f"Updated {datetime.fromtimestamp(now).strftime('%H:%M:%S')}"
    if refresh_rate:
        footer += f" · every {refresh_rate:g}s · Ctrl+C to exit"
    parts.append(Text(footer, style="dim"))
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)


def render_stats(stats: dict[str, Any], agent_name: str | None = None) -> Text:
    """The summary statistics as plain lines ("  • Failed: 2" keeps `awk '{print $3}'` working)."""
    lines = _title("📊 Summary Statistics", agent_name, " ")
    lines.append("\n\n")
    lines.append(f"Total Executions: {stats.get('total_executions') or 0:,}\n")
    for status in _counted(stats, tuple(STATUS_LOOK)):
        lines.append(f"  • {status.capitalize()}: ")
        lines.append(f"{stats.get(status) or 0}", style=STATUS_LOOK[status][1])
        lines.append("\n")
    lines.append(f"Avg Duration: {fmt_duration(stats.get('avg_duration'))}\n")
    lines.append(
        f"p50 / p95 Duration: {fmt_duration(stats.get('p50_duration'))} / {fmt_duration(stats.get('p95_duration'))}\n"
    )
    lines.append(f"Total Cost: {fmt_money(stats.get('total_cost'))}\n")
    lines.append(f"Total Tokens: {fmt_tokens(stats.get('total_tokens') or 0)}\n")
    lines.append(f"LLM Calls: {stats.get('llm_calls') or 0:,}\n")
    lines.append(f"Tool Calls: {stats.get('tool_calls') or 0:,}\n")
    unpriced = stats.get("unpriced_calls") or 0
    if unpriced:
        lines.append(
            f"{unpriced:,} LLM calls had no known price (not in Total Cost)\n", style="yellow"
        )
    lines.append(f"\nSuccess Rate: {fmt_percent(stats.get('success_rate'))}")
    return lines
