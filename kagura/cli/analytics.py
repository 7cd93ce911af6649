"""The analytics commands of `kagura monitor`: latency, regressions, health, budget, errors, trend, sql.

Each command parses its options, asks the store for one analytic (one file of
`sql/`), and prints JSON or a rich table; the renderers are pure functions of the
rows. `regressions`, `health` and `budget` exit 1 when they find a problem, so
cron can alert.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kagura.cli.options import (
    MAX_LIMIT,
    AgentOpt,
    DbOpt,
    JsonOpt,
    SinceOpt,
    UntilOpt,
    UsageError,
    check_choice,
    console,
    inherited,
    open_store,
    parse_span,
    parse_time,
    parse_window,
    print_json,
    require_agent,
)

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import RenderableType
    from rich.table import Table

    from kagura.observability.render.tables import Col, FitTable

DAY = 86400.0

AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Judge as of this time instead of now (same forms as --since)."),
]

# --- parsing ----------------------------------------------------------------------


def parse_at(value: str | None) -> float:
    """The time a judgement is made at: --at, else now."""
    at = parse_time(value, "--at")
    return time.time() if at is None else at


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_PARAMS = {"since", "until", "now", "split"}


def parse_param(text: str) -> tuple[str, Any]:
    """(name, value) of one --param NAME=VALUE: times, numbers, true/false/null, JSON lists, text."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise UsageError(f"--param {text!r}: write NAME=VALUE, e.g. --param since=7d")
    value = raw.strip()
    if name in _TIME_PARAMS and value.lower() not in ("", "null", "none"):
        return name, parse_time(value, f"--param {name}", end_of_day=name == "until")
    lowered = value.lower()
    if lowered in ("null", "none", ""):
        return name, None
    if lowered in ("true", "false"):
        return name, lowered == "true"
    if re.fullmatch(r"-?\d+", value):
        return name, int(value)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", value):
        return name, float(value)
    if value.startswith("["):
        try:
            return name, json.loads(value)
        except ValueError:
            raise UsageError(f"--param {name}: {value!r} is not a JSON list") from None
    return name, value


# The kinds of the params of the named queries, checked before DuckDB sees them.
_WHOLE_PARAMS = {"limit", "last", "min_runs", "recent_runs", "baseline_runs", "window"}
_BOOL_PARAMS = {"per_day"}
_FRACTION_PARAMS = {"degraded", "unhealthy", "min_failure_change", "alpha"}
_NON_NEGATIVE_PARAMS = {"min_change", "daily", "monthly"}
_SPAN_PARAMS = {"silent_after", "days", "silent_factor"}
_REQUIRED_PARAMS = {
    "trace_executions": ("trace",),
    "child_executions": ("parent",),
    "find_execution": ("prefix",),
}


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` for sql/NAME.sql with spans read, or a UsageError naming the bad one."""
    missing = [p for p in _REQUIRED_PARAMS.get(name, ()) if params.get(p) is None]
    if missing:
        raise UsageError(f"{name} needs --param {missing[0]}=VALUE")
    checked = dict(params)
    for key, value in params.items():
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in _BOOL_PARAMS and not isinstance(value, bool):
            raise UsageError(f"--param {key}={value}: give true or false")
        if key in _WHOLE_PARAMS and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise UsageError(f"--param {key}={value}: give a whole number of at least 1")
        if key in _WHOLE_PARAMS and value > MAX_LIMIT:
            raise UsageError(f"--param {key}={value}: give at most {MAX_LIMIT:,}")
        if key in _FRACTION_PARAMS and not (number and 0 <= value <= 1):
            raise UsageError(f"--param {key}={value}: give a number between 0 and 1")
        if key in _NON_NEGATIVE_PARAMS and not (number and value >= 0):
            raise UsageError(f"--param {key}={value}: give a number of at least 0")
        if key in _SPAN_PARAMS:
            if key == "silent_after" and isinstance(value, str):
                value = checked[key] = parse_span(value, f"--param {key}")
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise UsageError(f"--param {key}={value}: give a positive number")
    return checked


# --- rendering ----------------------------------------------------------------------


def _table(title: str, *columns: Col) -> FitTable:
    """A titled table that fits the console (see dashboard.FitTable)."""

    def make() -> Table:
        from rich import box
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
    from kagura.observability.render.formatting import fmt_duration
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

    from kagura.observability.render.formatting import fmt_duration
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

    from kagura.observability.render.formatting import fmt_duration, fmt_time
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

    from kagura.observability.render.formatting import fmt_money

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
    from kagura.observability.render.formatting import fmt_time, short_id
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
    from kagura.observability.render.formatting import fmt_money
    from kagura.observability.render.tables import Bar, Col

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
    from kagura.observability.render.formatting import fmt_money
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
    from rich import box
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
    from rich import box
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


def catalogue_markdown(entries: list[dict[str, Any]], texts: dict[str, str]) -> str:
    """docs/sql.md: every query under sql/ with its header, generated from the files."""
    lines = [
        "# The queries under `sql/`",
        "",
        "<!-- Generated by `kagura monitor sql --list --markdown > docs/sql.md`; do not edit by hand. -->",
        "",
        "Each analytic is one SQL file. The file stem is its name everywhere: the",
        "`EventStore` method, `kagura monitor sql NAME`, and `store.run(NAME, **params)`.",
        "Each file reads the views `executions` and `events` and takes named `$params`;",
        'a param left out binds NULL, which the optional filters read as "no filter".',
        "",
        "| Name | Returns | Grain |",
        "| --- | --- | --- |",
    ]
    for entry in entries:
        lines.append(
            f"| [`{entry['name']}`](#{entry['name']}) | {entry['summary']} | {entry['grain']} |"
        )
    for entry in entries:
        lines += [
            "",
            f"## {entry['name']}",
            "",
            entry["summary"][:1].upper() + entry["summary"][1:] + ".",
            "",
        ]
        lines.append(f"- grain: {entry['grain']}")
        lines.append(f"- params: {', '.join('`$' + p + '`' for p in entry['params']) or 'none'}")
        lines.append(f"- reads: {entry['reads']}")
        lines += ["", "```sql", _header_block(texts[entry["name"]]), "```"]
    return "\n".join(lines) + "\n"


def _header_block(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)


def _print_table_or_empty(table: Any, rows: list[Any], empty: str) -> None:
    out = console()
    if rows:
        out.print(table)
    else:
        out.print(empty)


# --- commands -------------------------------------------------------------------------


def latency(
    ctx: typer.Context,
    agent: AgentOpt = None,
    by: Annotated[
        str, typer.Option("--by", help="agent (run durations) or model (LLM call durations).")
    ] = "agent",
    per_day: Annotated[bool, typer.Option("--per-day", help="One row per local day too.")] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Latency percentiles (p50, p90, p95, p99) of runs per agent, or of LLM calls per model."""
    by = check_choice(by, ("agent", "model"), "--by")
    start, end = parse_window(since, until)
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    if by == "agent":
        require_agent(store, agent, db)
        rows = store.latency_percentiles(agent, start, end, per_day=per_day)
    else:
        if agent is not None:
            raise UsageError("--by model reads LLM calls of every agent; leave out --agent")
        rows = store.model_latency(None, start, end, per_day=per_day)
    if json:
        print_json(rows)
        return
    _print_table_or_empty(render_latency(rows, by), rows, "No finished runs in this window.")


def regressions(
    ctx: typer.Context,
    agent: AgentOpt = None,
    recent: Annotated[
        str, typer.Option("--recent", help="The recent window: the last 2d (or 36h, 1w, ...).")
    ] = "2d",
    baseline: Annotated[
        str,
        typer.Option("--baseline", help="The baseline: this span just before the recent window."),
    ] = "14d",
    recent_runs: Annotated[
        int | None,
        typer.Option(
            "--recent-runs", min=1, help="Compare by count: each agent's newest N runs are recent."
        ),
    ] = None,
    baseline_runs: Annotated[
        int | None,
        typer.Option(
            "--baseline-runs",
            min=1,
            help="With --recent-runs: the N runs before them are the baseline (default 5 x recent).",
        ),
    ] = None,
    min_runs: Annotated[
        int, typer.Option("--min-runs", min=1, help="Runs needed on each side before a test runs.")
    ] = 20,
    min_change: Annotated[
        float,
        typer.Option(
            "--min-change",
            min=0.0,
            help="Smallest rise of median, p95 or cost/run that counts (0.2 = 20%).",
        ),
    ] = 0.2,
    min_failure_change: Annotated[
        float,
        typer.Option(
            "--min-failure-change",
            min=0.0,
            max=1.0,
            help="Smallest rise of the failure rate that counts (0.05 = 5 points).",
        ),
    ] = 0.05,
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha", min=0.0, max=1.0, help="Chance that noise flags anything in the report."
        ),
    ] = 0.01,
    lookback: Annotated[
        str,
        typer.Option(
            "--lookback", help="With --recent-runs: look for runs this far back (e.g. 30d, 90d)."
        ),
    ] = "30d",
    at: AtOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Compare each agent's recent runs with its baseline: latency, tail, failures, cost. Exit 1 when flagged."""
    now = parse_at(at)
    options: dict[str, Any] = {
        "now": now,
        "min_runs": min_runs,
        "min_change": min_change,
        "min_failure_change": min_failure_change,
        "alpha": alpha,
    }
    if recent_runs is not None:
        options.update(
            recent_runs=recent_runs,
            baseline_runs=baseline_runs,
            lookback=parse_span(lookback, "--lookback"),
        )
        window = f"Newest {recent_runs} runs of each agent against the {baseline_runs or 5 * recent_runs} before them"
    else:
        if baseline_runs is not None:
            raise UsageError("--baseline-runs needs --recent-runs")
        options.update(
            recent=parse_span(recent, "--recent"), baseline=parse_span(baseline, "--baseline")
        )
        window = f"Last {recent} against the {baseline} before it"
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    require_agent(store, agent, db)
    rows = store.regressions(agent, **options)
    if json:
        print_json(rows)
    elif rows:
        console().print(render_regressions(rows, window))
    else:
        console().print("No runs in the compared windows.")
    if any(r["flagged"] for r in rows):
        raise typer.Exit(1)


def health(
    ctx: typer.Context,
    agent: AgentOpt = None,
    last: Annotated[
        int, typer.Option("--last", min=1, help="Judge each agent by its last N finished runs.")
    ] = 20,
    degraded: Annotated[
        float,
        typer.Option(
            "--degraded", min=0.0, max=1.0, help="Failure rate above which an agent is degraded."
        ),
    ] = 0.2,
    unhealthy: Annotated[
        float,
        typer.Option(
            "--unhealthy", min=0.0, max=1.0, help="Failure rate above which it is unhealthy."
        ),
    ] = 0.5,
    silent_after: Annotated[
        str,
        typer.Option(
            "--silent-after",
            help="Call an agent silent after this long without a run (and 10x its usual gap).",
        ),
    ] = "24h",
    lookback: Annotated[
        str,
        typer.Option(
            "--lookback", help="Judge the agents that ran within this span (e.g. 30d, 90d)."
        ),
    ] = "30d",
    min_runs: Annotated[
        int,
        typer.Option(
            "--min-runs",
            min=1,
            help="Finished runs an agent needs before a verdict; fewer: unknown.",
        ),
    ] = 5,
    at: AtOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """healthy / degraded / unhealthy per agent from its last runs, and agents gone silent. Exit 1 when unhealthy or silent."""
    if degraded > unhealthy:
        raise UsageError("--degraded must not be above --unhealthy")
    now = parse_at(at)
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    require_agent(store, agent, db)
    rows = store.agent_health(
        agent,
        last=last,
        degraded=degraded,
        unhealthy=unhealthy,
        silent_after=parse_span(silent_after, "--silent-after"),
        now=now,
        lookback=parse_span(lookback, "--lookback"),
        min_runs=min_runs,
    )
    if json:
        print_json(rows)
    else:
        _print_table_or_empty(render_health(rows, now), rows, "No runs yet.")
    if any(r["status"] == "unhealthy" or r["silent"] for r in rows):
        raise typer.Exit(1)


def budget(
    ctx: typer.Context,
    daily: Annotated[
        float | None,
        typer.Option("--daily", min=0.0, help="Daily budget in dollars (today, local time)."),
    ] = None,
    monthly: Annotated[
        float | None,
        typer.Option("--monthly", min=0.0, help="Monthly budget in dollars (this calendar month)."),
    ] = None,
    agent: AgentOpt = None,
    window: Annotated[
        float,
        typer.Option("--window", min=0.01, help="Days of recent spend the projection averages."),
    ] = 7.0,
    at: AtOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Spend today and this month against budgets, and the projected month end. Exit 1 when a budget is exceeded."""
    now = parse_at(at)
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    require_agent(store, agent, db)
    status = store.budget_status(daily, monthly, agent_name=agent, days=window, now=now)
    if json:
        print_json(status)
    else:
        console().print(render_budget(status))
    if status["daily_exceeded"] or status["monthly_exceeded"]:
        raise typer.Exit(1)


def errors(
    ctx: typer.Context,
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="At most this many groups."),
    ] = 20,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Failures grouped by error type and message (numbers, ids, paths masked), most frequent first."""
    start, end = parse_window(since, until)
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    require_agent(store, agent, db)
    rows = store.error_groups(agent, start, end, limit=limit)
    if json:
        print_json(rows)
        return
    _print_table_or_empty(render_errors(rows, time.time()), rows, "No failed runs in this window.")


def trend(
    ctx: typer.Context,
    agent: AgentOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this time (default 30d ago; same forms as everywhere)."),
    ] = "30d",
    until: UntilOpt = None,
    window: Annotated[int, typer.Option("--window", min=1, help="Days in the trailing mean.")] = 7,
    by_model: Annotated[
        bool, typer.Option("--by-model", help="Spend per day and model of the LLM calls instead.")
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Spend per day with a trailing mean, and the projected month-end spend with its method."""
    start, end = parse_window(since, until)
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    require_agent(store, agent, db)
    if by_model:
        rows = store.cost_by_model_rows(start, agent, until=end, per_day=True)
    else:
        rows = store.cost_trend_rows(start, agent, until=end, window=window)
    projection = store.budget_status(agent_name=agent, days=window)
    if json:
        keys = ("month_cost", "daily_mean", "days_left", "projected_month_end", "method")
        print_json({"rows": rows, "projection": {k: projection[k] for k in keys}})
        return
    from kagura.observability.render.formatting import fmt_money

    out = console()
    if not rows:
        out.print("No spend in this window.")
        return
    out.print(render_model_days(rows) if by_model else render_trend(rows, window))
    out.print(
        f"[bold]Projected month end:[/bold] {fmt_money(projection['projected_month_end'])}"
        f"  [dim]({projection['method']})[/dim]"
    )


def sql(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME|QUERY]",
            help="A query name from --list, or one SELECT over executions and events.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE for $NAME (times such as since=7d are parsed); repeat it.",
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the queries under sql/ from their headers.")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="With --list: print the catalogue as Markdown (docs/sql.md)."
        ),
    ] = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            metavar="SECONDS",
            help="Stop an ad-hoc SELECT after this many seconds (default 60).",
        ),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            metavar="SIZE",
            help="Memory an ad-hoc SELECT may use, e.g. 512MB (default 2GB).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb (default), or spark: run a named query on Apache Spark "
            "(master from KAGURA_SPARK_MASTER, default local[2]; needs kagura-ai[spark] and Java).",
        ),
    ] = "duckdb",
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Run a named query of sql/ or a read-only SELECT over the views executions and events.

    An ad-hoc SELECT runs in a sandbox: it reads only the store's own data, under a time and a memory limit.
    """
    from kagura.cli.spark_engine import check_engine
    from kagura.observability.analytics.sandbox import MEMORY_LIMIT, TIME_LIMIT, check_limits
    from kagura.observability.store import engine as queries

    engine = check_engine(engine)
    if json and csv_:
        raise UsageError("give one of --json and --csv")
    if list_ and query is not None:
        raise UsageError("--list lists the queries; give it without a query")
    if list_:
        entries = queries.catalogue()
        if markdown:
            texts = {e["name"]: queries.load_sql(e["name"]) for e in entries}
            sys.stdout.write(catalogue_markdown(entries, texts))
        elif json:
            print_json(entries)
        else:
            console().print(render_catalogue(entries))
        return
    if markdown:
        raise UsageError("--markdown goes with --list")
    if query is None or not query.strip():
        raise UsageError(
            'give a query name (see --list) or a SELECT, e.g. "SELECT count(*) FROM executions"'
        )
    params = dict(parse_param(p) for p in param or [])
    names = {e["name"] for e in queries.catalogue()}
    db = inherited(ctx, "db", db)
    limits = {
        "time_limit": TIME_LIMIT if time_limit is None else time_limit,
        "memory_limit": MEMORY_LIMIT if memory_limit is None else memory_limit,
    }
    try:
        check_limits(**limits)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if set(params) & set(limits):
        raise UsageError(
            "time_limit and memory_limit are options (--time-limit, --memory-limit), not params"
        )
    if _NAME.match(query.strip()):
        name = query.strip()
        if time_limit is not None or memory_limit is not None:
            raise UsageError(
                "--time-limit and --memory-limit are for an ad-hoc SELECT, not a named query"
            )
        if name not in names:
            raise UsageError(f"no query named {name!r}; see `kagura monitor sql --list`")
        wanted = set(queries.param_names(queries.load_sql(name)))
        unknown = sorted(set(params) - wanted)
        if unknown:
            raise UsageError(
                f"{name} takes no param {', '.join(unknown)}; it takes: {', '.join(sorted(wanted)) or 'none'}"
            )
        params = check_params(name, params)
        if engine == "spark":
            from kagura.cli.spark_engine import run_named

            result = run_named(open_store(db), name, params)
        else:
            result = open_store(db).run(name, **params)
    else:
        if engine == "spark":
            raise UsageError(
                "--engine spark runs the named queries of sql/ (see --list), not a SELECT"
            )
        params = check_params("query", params)
        from kagura.observability.analytics.sandbox import check_read_only
        from kagura.observability.errors import QueryError

        try:
            check_read_only(query)
        except QueryError as error:
            raise UsageError(str(error)) from None
        result = open_store(db).sql(query, **limits, **params)
    rows = result.rows()
    if json:
        print_json(rows)
    elif csv_:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else _csv_value(row[c]) for c in result.columns])
    else:
        out = console()
        out.print(render_rows(rows, result.columns))
        out.print(f"[dim]{len(rows):,} row(s)[/dim]")


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def register(monitor: typer.Typer) -> None:
    """Add the analytics commands to the `monitor` group."""
    monitor.command("latency")(latency)
    monitor.command("regressions")(regressions)
    monitor.command("health")(health)
    monitor.command("budget")(budget)
    monitor.command("errors")(errors)
    monitor.command("trend")(trend)
    monitor.command("sql")(sql)
