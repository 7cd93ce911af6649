"""The catalogue's answers as rich tables: one renderer per analytic, and any query's rows.

Pure functions of the rows an analytic returns (see analytics/catalogue.py); the
commands of `kagura monitor` print them.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.table import Table

from kagura.observability.render.formatting import fmt_duration, fmt_money, fmt_time, short_id
from kagura.observability.render.tables import Bar, Col, FitTable

DAY = 86400.0


def _table(title: str, *columns: Col) -> FitTable:
    """A titled table that fits the console (see dashboard.FitTable)."""

    def make() -> Table:
        from rich.table import Table

        return Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )

    from kagura.observability.render.tables import FitTable

    return FitTable(list(columns), make=make)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _change(before: Any, after: Any, fmt) -> str:
    if before is None and after is None:
        return "-"
    return f"{fmt(before)} → {fmt(after)}"


def render_latency(rows: list[dict[str, Any]], by: str = "agent") -> FitTable:
    """p50/p90/p95/p99 per agent or model (and day): one row each."""
    from kagura.observability.render.tables import Col

    key, count = ("agent_name", "runs") if by == "agent" else ("model", "calls")
    per_day = any(r.get("date") is not None for r in rows)
    columns = [Col(by.capitalize(), "text", keep=90, min_width=10)]
    if per_day:
        columns.append(Col("Date", "number", keep=85, justify="left"))
    columns += [Col(count.capitalize(), "number", keep=60), Col("Failed", "number", keep=40)]
    columns += [
        Col(name, "number", keep=keep)
        for name, keep in (("p50", 80), ("p90", 30), ("p95", 70), ("p99", 50), ("Max", 20))
    ]
    if by == "model":
        columns.append(Col("Tok/s", "number", keep=35))
    table = _table(f"Latency by {by}", *columns)
    for row in rows:
        cells = [str(row[key])] + ([str(row["date"])] if per_day else [])
        cells += [f"{row[count]:,}", f"{row['failed']:,}"]
        cells += [fmt_duration(row[k]) for k in ("p50", "p90", "p95", "p99", "max")]
        if by == "model":
            rate = row.get("tokens_per_second")
            cells.append("-" if rate is None else f"{rate:,.0f}")
        table.add_row(*cells)
    return table


def render_regressions(rows: list[dict[str, Any]], window: str) -> RenderableType:
    """One row per agent (and agent-model pair): baseline → recent, the ratios, then the verdict."""
    from rich.console import Group
    from rich.text import Text

    from kagura.observability.render.tables import Col

    table = _table(
        "Regressions",
        Col("Agent", "text", keep=90, min_width=10),
        Col("Runs", "number", keep=30),
        Col("Median", "number", keep=70, justify="left"),
        Col("p95", "number", keep=40, justify="left"),
        Col("Failed", "number", keep=60, justify="left"),
        Col("Cost/run", "number", keep=35, justify="left"),
        Col("Verdict", "wrap", keep=95, min_width=12),
    )
    for row in rows:
        if row["flagged"]:
            verdict = Text("✗ " + ", ".join(row["flags"]), style="bold red")
        elif not row["enough_data"]:
            verdict = Text("too few runs", style="dim")
        else:
            verdict = Text("✓ ok", style="green")
        name = row["agent_name"] + (f" / {row['model']}" if row["scope"] == "agent_model" else "")
        median = _change(row["baseline_median"], row["recent_median"], fmt_duration)
        table.add_row(
            name,
            f"{row['baseline_runs']:,}/{row['recent_runs']:,}",
            f"{median} {_ratio(row['median_ratio'])}" if row["median_ratio"] else median,
            _ratio(row["p95_ratio"]),
            _change(row["baseline_failure_rate"], row["recent_failure_rate"], _rate),
            _ratio(row["cost_ratio"]),
            verdict,
        )
    flagged = sum(1 for r in rows if r["flagged"])
    alpha = rows[0]["alpha_per_test"] if rows else None
    note = f"{window}; runs and values read baseline → recent, x = recent / baseline."
    if alpha is not None:
        note += (
            " A flag needs a significant one-sided test (rank test for latency and cost,"
            f" Fisher for tail and failures; p < {alpha:.2g} each, Bonferroni) and a real shift."
        )
    summary = (
        Text(f"{flagged} regression(s) flagged.", style="bold red")
        if flagged
        else Text("No regressions.", style="bold green")
    )
    return Group(table, Text(note, style="dim"), summary)


def render_health(rows: list[dict[str, Any]], now: float) -> FitTable:
    """Agent, status, failures among its last runs, last run, and silence."""
    from rich.text import Text

    from kagura.observability.render.tables import Col

    looks = {
        "healthy": ("✓ healthy", "green"),
        "degraded": ("⚠ degraded", "yellow"),
        "unhealthy": ("✗ unhealthy", "bold red"),
        "unknown": ("? too few runs", "dim"),
    }
    table = _table(
        "Agent health",
        Col("Agent", "text", keep=90, min_width=10),
        Col("Status", "number", keep=95, justify="left"),
        Col("Failed", "number", keep=70),
        Col("Rate", "number", keep=50),
        Col("Running", "number", keep=20, short="Run"),
        Col("Last run", "number", keep=40, justify="left"),
        Col("Silent", "wrap", keep=80, min_width=10),
    )
    for row in rows:
        label, style = looks.get(row["status"], (row["status"], ""))
        silent = (
            Text(f"silent for {fmt_duration(row['seconds_since_last_run'])}", style="bold red")
            if row["silent"]
            else Text("")
        )
        table.add_row(
            row["agent_name"],
            Text(label, style=style),
            f"{row['failed']}/{row['considered']}",
            _rate(row["failure_rate"]),
            f"{row['running']:,}",
            fmt_time(row["last_run_at"], now),
            silent,
        )
    return table


def render_budget(status: dict[str, Any]) -> RenderableType:
    """Spend today and this month against the budgets, and the projection with its method."""
    from rich.text import Text

    def line(label: str, spent: float, budget: float | None, exceeded: bool, kind: str) -> Text:
        text = Text(f"{label:<21}", style="bold")
        text.append(fmt_money(spent))
        if budget is None:
            return text
        share = f" ({100 * spent / budget:.0f}%)" if budget > 0 else ""
        text.append(f" of {fmt_money(budget)} {kind} budget{share}  ")
        text.append(
            "✗ EXCEEDED" if exceeded else "✓ within", style="bold red" if exceeded else "green"
        )
        return text

    out = Text("💰 Budget\n\n", style="bold")
    out.append_text(
        line(
            "Today:",
            status["today_cost"],
            status["daily_budget"],
            status["daily_exceeded"],
            "daily",
        )
    )
    out.append("\n")
    out.append_text(
        line(
            "This month:",
            status["month_cost"],
            status["monthly_budget"],
            status["monthly_exceeded"],
            "monthly",
        )
    )
    out.append("\n")
    out.append(f"{'Projected month end:':<21}", style="bold")
    out.append(fmt_money(status["projected_month_end"]))
    if status["monthly_budget"] is not None and status["projected_exceeded"]:
        out.append("  ⚠ above the monthly budget", style="yellow")
    out.append(f"\n  ({status['method']})", style="dim")
    if status["unpriced_calls"]:
        out.append(
            f"\n  {status['unpriced_calls']:,} LLM call(s) this month had no known price and are not counted.",
            style="yellow",
        )
    return out


def render_errors(rows: list[dict[str, Any]], now: float) -> FitTable:
    """Error groups, most frequent first, with a sample id for `kagura monitor trace`."""
    from kagura.observability.render.tables import Col

    table = _table(
        "Error groups",
        Col("Count", "number", keep=90),
        Col("Type", "text", keep=80, min_width=10),
        Col("Message", "wrap", keep=85, min_width=16),
        Col("Agents", "wrap", keep=40, min_width=10),
        Col("Last seen", "number", keep=50, justify="left"),
        Col("Sample", "id", keep=70),
    )
    for row in rows:
        agents = row["agents"]
        shown = ", ".join(agents[:3]) + (f" +{len(agents) - 3}" if len(agents) > 3 else "")
        table.add_row(
            f"{row['count']:,}",
            row["error_type"],
            row["message"] or "(no message)",
            shown,
            fmt_time(row["last_seen"], now),
            short_id(row["sample_id"]),
        )
    return table


def render_trend(rows: list[dict[str, Any]], window: int, bar_width: int = 24) -> FitTable:
    """Spend per day with its trailing mean and a bar."""
    from kagura.observability.render.tables import Col

    table = _table(
        "Cost by day",
        Col("Date", "number", keep=90, justify="left"),
        Col("Runs", "number", keep=50),
        Col("Cost", "number", keep=85),
        Col(f"{window}-day mean", "number", keep=40, short="Mean"),
        Col("", "bar", keep=10, min_width=4),
    )
    peak = max((r["cost"] for r in rows), default=0.0)
    for row in rows:
        table.add_row(
            str(row["date"]),
            f"{row['runs']:,}",
            fmt_money(row["cost"]) + ("+" if row["unpriced_calls"] else ""),
            fmt_money(row["trailing_mean"]),
            Bar(row["cost"] / peak if peak > 0 else 0.0, bar_width),
        )
    return table


def render_model_days(rows: list[dict[str, Any]]) -> FitTable:
    """Spend per day and model of the LLM calls."""
    from kagura.observability.render.tables import Col

    table = _table(
        "Cost by day and model",
        Col("Date", "number", keep=90, justify="left"),
        Col("Model", "text", keep=85, min_width=10),
        Col("Calls", "number", keep=40),
        Col("Tokens", "number", keep=30),
        Col("Cost", "number", keep=80),
    )
    for row in rows:
        table.add_row(
            str(row["date"]),
            row["model"] or "?",
            f"{row['calls']:,}",
            f"{row['tokens']:,}",
            fmt_money(row["cost"]) + ("+" if row["unpriced_calls"] else ""),
        )
    return table


def render_catalogue(entries: list[dict[str, Any]]) -> Table:
    """The queries under sql/: name, what it returns, its params."""
    from rich.table import Table

    table = Table(
        title="Queries (kagura monitor sql NAME --param name=value)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=True,
    )
    table.add_column("Name", no_wrap=True)
    table.add_column("Returns", ratio=3)
    table.add_column("Params", ratio=2)
    for entry in entries:
        table.add_row(entry["name"], entry["summary"], ", ".join(entry["params"]) or "-")
    return table


def render_rows(rows: list[dict[str, Any]], columns: list[str]) -> RenderableType:
    """Any query result: a table when every column fits whole enough, else one block per row.

    Times (columns named *_at, since, until, now, last_seen, ... holding epoch
    seconds) read as local ISO date-times; numbers are never cut.
    """
    from kagura.observability.render.tables import Col, FitTable

    cells = [[_cell(c, row[c]) for c in columns] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[c], (int, float)) or row[c] is None for row in rows)
        for c in columns
    ]
    spec = [
        Col(c, "id" if _is_id(c) else "number" if numeric[i] else "text", keep=100, min_width=12)
        for i, c in enumerate(columns)
    ]
    table = FitTable(spec, [(line, {}) for line in cells], make=_rows_table)
    return _RowsView(table, columns, cells)


def _rows_table() -> Table:
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))


class _RowsView:
    """A query result laid out at print time: the table if it fits, else a record per row."""

    def __init__(self, table: FitTable, columns: list[str], cells: list[list[str]]):
        self.table, self.columns, self.cells = table, columns, cells

    def __rich_console__(self, console: Any, options: Any):
        if self.table.fits(console, options, options.max_width):
            yield from self.table.__rich_console__(console, options)
            return
        from rich.table import Table
        from rich.text import Text

        name_width = max((len(c) for c in self.columns), default=0)
        for number, line in enumerate(self.cells, 1):
            label = f"-[ row {number} ]"
            yield Text(label + "-" * max(0, min(options.max_width, 40) - len(label)), style="dim")
            grid = Table.grid(padding=(0, 1))
            grid.add_column(width=name_width, no_wrap=True, style="bold")
            grid.add_column(overflow="fold")
            for name, value in zip(self.columns, line, strict=True):
                grid.add_row(Text(name), Text(value))
            yield grid


# Columns holding a moment: epoch seconds shown as local date-times.
_TIME_COLUMNS = {
    "since",
    "until",
    "now",
    "split",
    "timestamp",
    "first_seen",
    "last_seen",
    "last_run",
}


def _is_id(column: str) -> bool:
    name = column.lower()
    return name == "id" or name.endswith("_id")


def _is_time(column: str) -> bool:
    name = column.lower()
    return name.endswith("_at") or name in _TIME_COLUMNS


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and _is_time(column) and 1e8 <= value < 1e11:
        from datetime import datetime

        return datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        text = f"{value:.6g}"
        if "e" in text:  # no 1.79e+09 or 3.6e-05 in a table: write the digits out
            text = f"{value:.0f}" if abs(value) >= 1 else f"{value:.12f}".rstrip("0")
        return text
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
