"""The rendering of `kagura monitor search`: one line per place the text was found."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel

from kagura.observability.render.formatting import fmt_time, short_id, shorten
from kagura.observability.render.tables import Col, FitTable, panel, ruled


def render_search(rows: list[dict[str, Any]], text: str, now: float | None = None) -> Panel:
    """The "Search" panel: when, agent, where the text was found, a snippet, the run's id."""
    table = FitTable(
        [
            Col("Time", "number", keep=60, justify="left"),
            Col("Agent", "text", keep=70, min_width=6, max_width=24),
            Col("Found in", "text", keep=50, min_width=6, max_width=32),
            Col("Snippet", "text", keep=80, min_width=10, max_width=70),
            Col("ID", "id", keep=90, style="cyan"),
        ],
        make=ruled,
        header_row=True,
    )
    for r in rows:
        table.add_row(
            fmt_time(r["started_at"], now),
            r["agent_name"] or "?",
            r["field"],
            shorten(r["snippet"] or "", 70),
            short_id(r["execution_id"]),
        )
    return panel(table, f"Search: {shorten(text, 40)}")
