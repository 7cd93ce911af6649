"""Cost: by agent, model or date, the Total row, and the monthly estimate."""

from __future__ import annotations

from datetime import date
from typing import Any

from rich.panel import Panel
from rich.text import Text

from kagura.observability.render.formatting import (
    fmt_cost,
    fmt_money,
    fmt_percent,
    fmt_tokens,
)
from kagura.observability.render.tables import Bar, Col, FitTable, panel, ruled

ESTIMATE_WINDOW_DAYS = 7


# --- cost -----------------------------------------------------------------------


def cost_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The Total row of cost rows (cost_by_agent / cost_by_date / cost_by_model shapes)."""
    return {
        "calls": sum(row.get("calls") or 0 for row in rows),
        "tokens": sum(row.get("tokens") or 0 for row in rows),
        "cost": sum(row.get("cost") or 0.0 for row in rows),
        "unpriced_calls": sum(row.get("unpriced_calls") or 0 for row in rows),
    }


def _cost_cell(row: dict[str, Any]) -> str:
    return fmt_cost(row.get("cost"), row.get("unpriced_calls"))


# Rows a cost table shows by default; the rest add up in one "N more" row.
COST_ROWS = 25
_NONE_LABEL = {"user": "(no user)", "session": "(no session)", "tag": "(untagged)"}


def render_cost_table(
    rows: list[dict[str, Any]], group_by: str = "agent", limit: int | None = COST_ROWS
) -> Panel:
    """The "Cost by Agent" (or model, user, ...) panel: the `limit` most expensive groups
    (None: all), one row adding up the rest, then a Total row over every group."""
    label = group_by.capitalize()
    key = {"agent": "agent_name", "user": "user_id", "session": "session_id"}.get(
        group_by, group_by
    )
    table = FitTable(
        [
            Col(label, "text", keep=90, min_width=8, max_width=40),
            Col("Calls", "number", keep=40),
            Col("Tokens", "number", keep=30),
            Col("Cost", "number", keep=80),
            Col("Share", "number", keep=50),
        ],
        make=ruled,
        header_row=True,
    )
    total = cost_totals(rows)
    shown = rows if limit is None or len(rows) <= limit else rows[:limit]
    rest = rows[len(shown) :]
    lines = [
        (str(row[key]) if row.get(key) is not None else _NONE_LABEL.get(group_by, "?"), row)
        for row in shown
    ]
    if rest:
        noun = {"agent": "agents", "model": "models", "user": "users", "session": "sessions"}
        lines.append(
            (f"{len(rest):,} more {noun.get(group_by, group_by + 's')}", cost_totals(rest))
        )
    for index, (name, row) in enumerate(lines):
        cost = row.get("cost") or 0.0
        table.add_row(
            name,
            f"{row.get('calls') or 0:,}",
            fmt_tokens(row.get("tokens") or 0),
            _cost_cell(row),
            fmt_percent(100.0 * cost / total["cost"]) if total["cost"] > 0 else "-",
            end_section=index == len(lines) - 1,
            style="dim" if rest and index == len(lines) - 1 else None,
        )
    table.add_row(
        "Total",
        f"{total['calls']:,}",
        fmt_tokens(total["tokens"]),
        _cost_cell(total),
        "100.0%" if total["cost"] > 0 else "-",
        style="bold",
    )
    return panel(table, f"Cost by {label}")


def render_cost_by_date(rows: list[dict[str, Any]], bar_width: int = 24) -> Panel:
    """The "Cost by Date" panel: one row per local day with a bar of its spend, then a Total row.

    The bar is `bar_width` cells wide when there is room; it shrinks before any number is cut.
    """
    table = FitTable(
        [
            Col("Date", "number", keep=90, justify="left"),
            Col("Calls", "number", keep=40),
            Col("Tokens", "number", keep=30),
            Col("Cost", "number", keep=80),
            Col("", "bar", keep=10, min_width=4, style="cyan"),
        ],
        make=ruled,
        header_row=True,
    )
    peak = max((row.get("cost") or 0.0 for row in rows), default=0.0)
    for index, row in enumerate(rows):
        day = row.get("date")
        table.add_row(
            day.isoformat() if isinstance(day, date) else str(day),
            f"{row.get('calls') or 0:,}",
            fmt_tokens(row.get("tokens") or 0),
            _cost_cell(row),
            Bar((row.get("cost") or 0.0) / peak if peak > 0 else 0.0, bar_width),
            end_section=index == len(rows) - 1,
        )
    total = cost_totals(rows)
    table.add_row(
        "Total",
        f"{total['calls']:,}",
        fmt_tokens(total["tokens"]),
        _cost_cell(total),
        Bar(0.0, bar_width),
        style="bold",
    )
    return panel(table, "Cost by Date")


def render_monthly_estimate(projection: dict[str, Any]) -> Text:
    """ "Estimated monthly cost: $X" and the lines saying how it was estimated."""
    text = Text("Estimated monthly cost: ", style="bold")
    text.append(fmt_money(projection.get("monthly_estimate") or 0.0), style="bold")
    spent = fmt_money(projection.get("window_cost") or 0.0)
    runs = projection.get("window_runs") or 0
    text.append(f"\n  = {projection.get('method') or 'no runs yet'}", style="dim")
    text.append(f"\n    from {spent} spent in {runs:,} run{'s' if runs != 1 else ''}", style="dim")
    return text
