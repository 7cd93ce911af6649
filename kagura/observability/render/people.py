"""The renderings of users and sessions: per-user budgets."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from kagura.observability.render.formatting import fmt_money
from kagura.observability.render.tables import Col, FitTable, panel, ruled


def render_user_budgets(rows: list[dict[str, Any]]) -> Group:
    """The "Budget per User" panel (users over a budget marked) and a line saying how many are over."""
    table = FitTable(
        [
            Col("User", "text", keep=90, min_width=6, max_width=32),
            Col("Today", "number", keep=80),
            Col("Runs today", "number", keep=30),
            Col("This month", "number", keep=70),
            Col("Runs this month", "number", keep=20),
            Col("Status", "text", keep=85),
        ],
        make=ruled,
        header_row=True,
    )
    over = 0
    for r in rows:
        flags = [
            label
            for label, hit in (
                ("over daily", r["daily_exceeded"]),
                ("over monthly", r["monthly_exceeded"]),
            )
            if hit
        ]
        over += bool(flags)
        table.add_row(
            r["user_id"],
            fmt_money(r["today_cost"]),
            f"{r['today_runs']:,}",
            fmt_money(r["month_cost"]),
            f"{r['month_runs']:,}",
            Text(", ".join(flags), style="red") if flags else Text("ok", style="green"),
        )
    if not rows:
        table.add_row(Text("no runs with a user this month", style="dim"), "", "", "", "", "")
    budgets = []
    if rows and rows[0]["daily_budget"] is not None:
        budgets.append(f"{fmt_money(rows[0]['daily_budget'])} a day")
    if rows and rows[0]["monthly_budget"] is not None:
        budgets.append(f"{fmt_money(rows[0]['monthly_budget'])} a month")
    title = "Budget per User" + (f" ({', '.join(budgets)})" if budgets else "")
    summary = Text(
        f"{over} of {len(rows)} users over budget" if over else "No user over budget",
        style="red" if over else "green",
    )
    return Group(panel(table, title), summary)
