"""The terminal face of the telemetry: rich renderers and the `Dashboard`.

Renderers are pure functions from store rows (public dicts) to rich renderables;
`Dashboard` fetches rows from an `EventStore`, renders them and prints them, and
runs the live view. Formatting rules (money, durations, tokens, local times)
live here too, so every front end shows numbers the same way.
"""

from __future__ import annotations

import math
import re
import sys
import time
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore

# Lines only above a section's last row (the Total row): the tutorial's look.
_RULED = box.Box("    \n    \n    \n    \n ── \n    \n    \n    \n")

STATUS_LOOK = {
    "completed": ("✓ COMPLETED", "green"),
    "failed": ("✗ FAILED", "red"),
    "running": ("● RUNNING", "yellow"),
    "cancelled": ("⊘ CANCELLED", "magenta"),
    "abandoned": ("✗ ABANDONED", "red dim"),
}

# The status labels of a narrow table.
SHORT_STATUS = {
    "completed": "✓ OK",
    "failed": "✗ FAIL",
    "running": "● RUN",
    "cancelled": "⊘ CANC",
    "abandoned": "✗ ABAN",
}

MONTH_DAYS = 30
ESTIMATE_WINDOW_DAYS = 7
_BLOCKS = " ▏▎▍▌▋▊▉█"


# --- formatting -------------------------------------------------------------------


def fmt_money(value: float | None, unknown: str = "n/a") -> str:
    """Dollars with enough digits to show a tiny cost (never $0.00 for a nonzero cost)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return unknown
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # Four decimals, or two significant digits when that shows more of a tiny cost
    # (down to 1e-14 dollars: below 12 decimals, 2.2e-12 would read as 2e-12).
    decimals = min(15, max(4, 1 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(4, "0")
    return f"${whole}.{frac}"


def fmt_cost(value: float | None, unpriced_calls: int | None = 0) -> str:
    """A cost for a table cell: '?' when unknown, a trailing '+' when some calls had no price."""
    if value is None or (unpriced_calls and not value):
        return "?"  # nothing known: every LLM call of it had no price
    return fmt_money(value) + ("+" if unpriced_calls else "")


def fmt_duration(seconds: float | None) -> str:
    """A duration: 0.52s, 2m 05s, 1h 02m; '-' when unknown."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes}m {secs:02d}s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}h {rest // 60:02d}m"


def fmt_tokens(count: int | float | None) -> str:
    """A token count with thousands separators; '-' when unknown."""
    if count is None:
        return "-"
    return f"{int(count):,}"


def fmt_percent(value: float | None) -> str:
    """A percentage with one decimal; '-' when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.1f}%"


def fmt_time(epoch: float | None, now: float | None = None) -> str:
    """Local time of day for today's times, else the date and minute."""
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    if moment.year == today.year:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d")


def fmt_datetime(epoch: float | None) -> str:
    """Local date and time to the second."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str | None, *, short: bool = False) -> Text:
    """The coloured status label (✓ COMPLETED green, ✗ FAILED red, ● RUNNING yellow); `short`: ✓ OK, ✗ FAIL."""
    label, style = STATUS_LOOK.get(status or "", ((status or "?").upper(), ""))
    if short:
        label = SHORT_STATUS.get(status or "", label[:6])
    return Text(label, style=style)


def _metric(execution: dict[str, Any], key: str) -> Any:
    return (execution.get("metrics") or {}).get(key, execution.get(key))


def _shorten(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# Generated ids are `exec_` + 12 hex digits of start milliseconds + 16 random hex digits.
_GENERATED_ID = re.compile(r"^exec_[0-9a-f]{28}$")
SHORT_ID_LENGTH = 21


def short_id(execution_id: str) -> str:
    """A generated id cut after its time part and 4 random hex digits (a unique prefix in practice); others whole."""
    if _GENERATED_ID.match(execution_id):
        return execution_id[:SHORT_ID_LENGTH]
    return execution_id


# --- tables that fit the width -------------------------------------------------------


class Col:
    """One column of a FitTable and how it gives way when the console is narrow.

    kind: "text" (cut with an ellipsis down to `min_width`), "wrap" (wraps, at least
    `min_width` wide), "number" and "id" (never cut: a number must read true and an id
    must stay a prefix `kagura monitor trace` accepts), "bar" (shrinks first, down to
    `min_width`). `keep` ranks usefulness: when even the narrowest layout does not
    fit, the column with the lowest `keep` goes first. `short` is a narrower header.
    """

    def __init__(
        self,
        header: str,
        kind: str = "text",
        *,
        keep: int = 50,
        min_width: int = 8,
        max_width: int | None = None,
        justify: str | None = None,
        short: str | None = None,
        style: str = "",
    ):
        self.header = header
        self.kind = kind
        self.keep = keep
        self.min_width = min_width
        self.max_width = max_width
        self.justify = justify or ("right" if kind == "number" else "left")
        self.short = short
        self.style = style


class Bar:
    """A bar cell: `share` (0-1) of whatever width its column gets."""

    def __init__(self, share: float, natural: int = 24):
        self.share = share
        self.natural = natural


class Alt:
    """A cell with a narrower form, used when its column cannot show the full one."""

    def __init__(self, full: Text | str, short: Text | str):
        self.full = Text(full) if isinstance(full, str) else full
        self.short = Text(short) if isinstance(short, str) else short


def _cell_width(cell: Any) -> int:
    if isinstance(cell, Bar):
        return cell.natural
    if isinstance(cell, Alt):
        return cell.full.cell_len
    if isinstance(cell, Text):
        return max((Text(line).cell_len for line in cell.plain.splitlines()), default=0)
    return Text(str(cell)).cell_len


def _cell_min(cell: Any) -> int:
    return cell.short.cell_len if isinstance(cell, Alt) else _cell_width(cell)


class FitTable:
    """A table that lays itself out for the width it is given (by rich, at print time).

    Numbers and ids are never cut; bars shrink before data; text columns shrink
    to their minimum; then the least useful columns are dropped, one at a time.
    `make` builds the empty rich Table (its box, title, padding); with
    `header_row` the header is printed as a bold first row (the ruled look).
    """

    def __init__(
        self,
        columns: list[Col],
        rows: list[tuple[list[Any], dict[str, Any]]] | None = None,
        *,
        make: Any = None,
        header_row: bool = False,
    ):
        self.columns = columns
        self.rows: list[tuple[list[Any], dict[str, Any]]] = list(rows or [])
        self.make = make
        self.header_row = header_row

    def add_row(self, *cells: Any, **options: Any) -> None:
        """Add one row of cells (str, Text, Bar or Alt); options go to rich's add_row."""
        self.rows.append((list(cells), options))

    def _new_table(self) -> Table:
        if self.make is not None:
            return self.make()
        return Table(box=box.SIMPLE_HEAD, pad_edge=False)

    def _overhead(self, console: Console, options: Any, count: int) -> int:
        """Columns the table's borders and padding take around `count` columns."""
        from rich.measure import Measurement

        table = self._new_table()
        table.title = None
        for _ in range(count):
            table.add_column(width=1)
        return Measurement.get(console, options, table).maximum - count

    def _bounds(self, index: int) -> tuple[int, int]:
        """(narrowest, natural) width of one column."""
        col = self.columns[index]
        cells = [cells[index] for cells, _ in self.rows]
        header = len(col.header)
        short = len(col.short) if col.short else header
        natural = max([header, *(_cell_width(c) for c in cells)])
        if col.max_width is not None:
            natural = min(natural, max(col.max_width, short))
        if col.kind in ("number", "id") or any(isinstance(c, Alt) for c in cells):
            narrowest = max([min(short, header), *(_cell_min(c) for c in cells)])
            return narrowest, max(natural, narrowest)
        narrowest = min(natural, max(col.min_width, 1))
        if col.kind != "bar":
            narrowest = max(narrowest, min(short, natural))
        return narrowest, natural

    def layout(self, console: Console, options: Any, width: int) -> list[int | None]:
        """The width of each column within `width`; None for a dropped one."""
        bounds = [self._bounds(i) for i in range(len(self.columns))]
        active = list(range(len(self.columns)))

        def needed(indices: list[int]) -> int:
            return sum(bounds[i][0] for i in indices) + self._overhead(
                console, options, len(indices)
            )

        while len(active) > 1 and needed(active) > width:
            weakest = min(active, key=lambda i: (self.columns[i].keep, -i))
            active.remove(weakest)
        widths: list[int | None] = [None] * len(self.columns)
        for i in active:
            widths[i] = bounds[i][0]
        room = width - needed(active)
        # Data grows to its natural width first (most useful first), bars last.
        order = sorted(active, key=lambda i: (self.columns[i].kind == "bar", -self.columns[i].keep))
        alts = {i for i in active if any(isinstance(cells[i], Alt) for cells, _ in self.rows)}
        for i in order:
            if room <= 0:
                break
            grow = min(room, bounds[i][1] - (widths[i] or 0))
            if i in alts and grow < bounds[i][1] - (widths[i] or 0):
                continue  # a cell with a short form uses it until the long one fits
            widths[i] = (widths[i] or 0) + grow
            room -= grow
        return widths

    def fits(self, console: Console, options: Any, width: int) -> bool:
        """Whether every column fits within `width` at its narrowest."""
        narrowest = sum(self._bounds(i)[0] for i in range(len(self.columns)))
        return narrowest + self._overhead(console, options, len(self.columns)) <= width

    def natural_width(self, console: Console, options: Any) -> int:
        """The width of the table with every column at its natural width."""
        naturals = [self._bounds(i)[1] for i in range(len(self.columns))]
        return sum(naturals) + self._overhead(console, options, len(self.columns))

    def build(self, console: Console, options: Any, width: int) -> Table:
        """The rich Table laid out for `width` columns."""
        widths = self.layout(console, options, width)
        table = self._new_table()
        shown = [i for i, w in enumerate(widths) if w is not None]
        for i in shown:
            col = self.columns[i]
            wrap = col.kind == "wrap"
            table.add_column(
                "" if self.header_row else self._header(col, widths[i]),
                justify=col.justify,
                width=widths[i],
                no_wrap=not wrap,
                overflow="fold" if wrap else ("crop" if col.kind == "id" else "ellipsis"),
                style=col.style or None,
            )
        if self.header_row:
            table.add_row(
                *(Text(self._header(self.columns[i], widths[i])) for i in shown), style="bold"
            )
        for cells, row_options in self.rows:
            table.add_row(*(self._cell(cells[i], widths[i]) for i in shown), **row_options)
        return table

    @staticmethod
    def _header(col: Col, width: int | None) -> str:
        if width is not None and len(col.header) > width and col.short:
            return col.short
        return col.header

    @staticmethod
    def _cell(cell: Any, width: int | None) -> Any:
        if isinstance(cell, Bar):
            return _bar(cell.share, width or 0)
        if isinstance(cell, Alt):
            return cell.full if cell.full.cell_len <= (width or 0) else cell.short
        return Text(cell) if isinstance(cell, str) else cell

    def __rich_console__(self, console: Console, options: Any):
        yield self.build(console, options, options.max_width)

    def __rich_measure__(self, console: Console, options: Any):
        from rich.measure import Measurement

        natural = min(self.natural_width(console, options), options.max_width)
        return Measurement(natural, natural)


def _ruled() -> Table:
    """The borderless look of the dashboard's tables: a rule only above the Total row."""
    return Table(
        box=_RULED, show_header=False, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0)
    )


def _panel(body: RenderableType, title: str) -> Panel:
    return Panel(body, title=title, title_align="left", box=box.SQUARE, expand=False)


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
    table = FitTable(columns, make=_ruled, header_row=True)
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
            "…"
            if running
            else fmt_cost(_metric(row, "total_cost"), _metric(row, "unpriced_calls")),
        ]
        cells.extend(row.get(key) or "-" for _, key in people)
        if show_id:
            cells.append(short_id(row.get("id") or ""))
        table.add_row(*cells)
    if not rows:
        table.add_row(Text("no executions", style="dim"), *[""] * (len(columns) - 1))
    return _panel(table, title)


def render_list_table(rows: list[dict[str, Any]], now: float | None = None) -> Panel:
    """The "Execution History" panel, with the id to copy into `kagura monitor trace`."""
    return render_activity_table(rows, "Execution History", show_id=True, now=now)


def render_header(stats: dict[str, Any], agent_name: str | None = None) -> Text:
    """The live view's header: title and Total | Completed | Failed (| Running)."""
    text = Text("📊 Kagura Agent Monitor", style="bold")
    if agent_name:
        text.append(f"  (agent: {agent_name})", style="dim")
    text.append("\n")
    text.append(f"Total: {stats.get('total_executions') or 0:,}")
    text.append(" | ")
    text.append(f"Completed: {stats.get('completed') or 0:,}", style="green")
    text.append(" | ")
    text.append(f"Failed: {stats.get('failed') or 0:,}", style="red")
    running = stats.get("running") or 0
    if running:
        text.append(" | ")
        text.append(f"Running: {running:,}", style="yellow")
    return text


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
    lines = Text()
    lines.append("📊 Summary Statistics", style="bold")
    if agent_name:
        lines.append(f" (agent: {agent_name})", style="dim")
    lines.append("\n\n")
    lines.append(f"Total Executions: {stats.get('total_executions') or 0:,}\n")
    lines.append("  • Completed: ")
    lines.append(f"{stats.get('completed') or 0}", style="green")
    lines.append("\n  • Failed: ")
    lines.append(f"{stats.get('failed') or 0}", style="red")
    lines.append("\n")
    for key, style in (("running", "yellow"), ("cancelled", "magenta"), ("abandoned", "red dim")):
        if stats.get(key):
            lines.append(f"  • {key.capitalize()}: ")
            lines.append(f"{stats[key]}", style=style)
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


# --- traces -----------------------------------------------------------------------


def _event_label(event: dict[str, Any]) -> Text:
    """One event of the timeline without its offset."""
    kind = event.get("type")
    data = event.get("data") or {}
    name = event.get("name") or data.get("model") or data.get("tool_name") or data.get("operation")
    duration = event.get("duration")
    failed = event.get("status") in ("error", "failed") or event.get("error")
    if kind == "llm_call":
        parts = []
        if event.get("total_tokens") is not None:
            parts.append(f"{fmt_tokens(event['total_tokens'])} tokens")
        parts.append(fmt_money(event.get("cost"), unknown="price unknown"))
        parts.append(fmt_duration(duration))
        text = Text(f"LLM Call ({name or '?'}) - " + ", ".join(parts))
    elif kind == "tool_call":
        text = Text(f"Tool Call ({name or '?'}) - {fmt_duration(duration)}")
    elif kind == "memory_operation":
        text = Text(f"Memory Op ({name or '?'}) - {fmt_duration(duration)}")
    else:
        label = f"Event ({name})" if name else f"Event ({kind})"
        extra = {k: v for k, v in data.items() if k not in ("name",)}
        text = Text(label + (f" - {_shorten(extra, 60)}" if extra else ""))
    if failed:
        text.append(f" ✗ {_shorten(event.get('error') or 'failed', 80)}", style="red")
    return text


def _offset(start: float | None, origin: float) -> str:
    return f"[{max(0.0, (start or origin) - origin):.2f}s]"


def _end_line(execution: dict[str, Any], origin: float, now: float) -> Text:
    status = execution.get("status")
    ended = execution.get("ended_at")
    if status == "running" or ended is None:
        elapsed = max(0.0, now - execution["started_at"])
        return Text(
            f"{_offset(now, origin)} still running ({fmt_duration(elapsed)} so far)", style="yellow"
        )
    if status == "completed":
        return Text(f"{_offset(ended, origin)} Completion", style="green")
    error = execution.get("error") or ""
    kind = execution.get("error_type")
    what = f"{kind}: {error}" if kind and not error.startswith(kind) else error
    label = STATUS_LOOK.get(status or "", (str(status).upper(), "red"))[0]
    return Text(
        f"{_offset(ended, origin)} {label}" + (f": {_shorten(what, 72)}" if what else ""),
        style="red",
    )


def _add_timeline(
    node: Tree,
    execution: dict[str, Any],
    children: dict[str, list[dict]],
    origin: float,
    now: float,
) -> None:
    """Events and child runs of `execution`, in time order, then its end line."""
    items: list[tuple[float, int, Any]] = []
    for event in execution.get("events") or []:
        items.append((event.get("timestamp") or execution["started_at"], 0, event))
    for child in children.get(execution["id"], []):
        items.append((child["started_at"], 1, child))
    items.sort(key=lambda item: (item[0], item[1]))
    for start, is_child, item in items:
        if is_child:
            label = Text(f"{_offset(start, origin)} ▶ ")
            label.append(item.get("agent_name") or "?", style="bold")
            label.append(f" ({short_id(item['id'])}) ")
            label.append_text(status_text(item.get("status")))
            label.append(
                f" {fmt_duration(item.get('duration'))}, {fmt_cost(_metric(item, 'total_cost'), _metric(item, 'unpriced_calls'))}"
            )
            _add_timeline(node.add(label), item, children, origin, now)
        else:
            label = Text(f"{_offset(start, origin)} ")
            label.append_text(_event_label(item))
            node.add(label)
    node.add(_end_line(execution, origin, now))


def nest_trace(execution: dict[str, Any], trace: list[dict[str, Any]]) -> dict[str, Any]:
    """`execution` with "children" holding its child runs from `trace`, each with its events and children."""
    children: dict[str, list[dict]] = {}
    for run in trace:
        if run.get("parent_id"):
            children.setdefault(run["parent_id"], []).append(run)

    def nested(run: dict[str, Any], seen: frozenset[str]) -> dict[str, Any]:
        kids = [c for c in children.get(run["id"], []) if c["id"] not in seen]
        return {**run, "children": [nested(c, seen | {c["id"]}) for c in kids]}

    if not trace:
        return execution
    return nested(execution, frozenset({execution["id"]}))


def _descendants(root: str, children: dict[str, list[dict]]) -> list[dict]:
    """Every run nested under `root`, depth first."""
    found = []
    for child in children.get(root, []):
        found.append(child)
        found.extend(_descendants(child["id"], children))
    return found


def render_trace(
    execution: dict[str, Any], trace: list[dict[str, Any]] | None = None, now: float | None = None
) -> Group:
    """The trace of one execution: info, metrics, and its timeline with nested runs as subtrees.

    `trace` (from `get_trace`) supplies the events of nested runs; without it the
    execution's own "children" are shown without their events.
    """
    now = time.time() if now is None else now
    origin = execution["started_at"]
    title = Text("📝 Execution Trace: ", style="bold")
    title.append(f"{execution.get('agent_name')} ({execution['id']})", style="bold")

    info = Tree("Execution Info", guide_style="dim")
    info.add(f"Started: {fmt_datetime(origin)}")
    info.add(Text("Status: ").append_text(status_text(execution.get("status"))))
    duration = execution.get("duration")
    if execution.get("status") == "running":
        info.add(Text(f"Duration: {fmt_duration(max(0.0, now - origin))} so far", style="yellow"))
    else:
        info.add(f"Duration: {fmt_duration(duration)}")
    if execution.get("model"):
        info.add(f"Model: {execution['model']}")
    if execution.get("error") or execution.get("error_type"):
        error = execution.get("error") or ""
        kind = execution.get("error_type")
        what = f"{kind}: {error}" if kind and not error.startswith(kind) else error
        info.add(Text(f"Error: {_shorten(what, 200)}", style="red"))
    if execution.get("parent_id"):
        info.add(f"Parent: {execution['parent_id']}")
    if execution.get("trace_id") and execution.get("trace_id") != execution["id"]:
        info.add(f"Trace: {execution['trace_id']}")
    if execution.get("kwargs"):
        info.add(f"Inputs: {_shorten(execution['kwargs'], 100)}")
    if execution.get("tags"):
        info.add(f"Tags: {_shorten(execution['tags'], 100)}")

    metrics = Tree("Metrics", guide_style="dim")
    values = execution.get("metrics") or {}
    metrics.add(f"total_cost: {fmt_money(values.get('total_cost'))}")
    metrics.add(f"total_tokens: {fmt_tokens(values.get('total_tokens') or 0)}")
    metrics.add(f"llm_calls: {values.get('llm_calls') or 0}")
    metrics.add(f"tool_calls: {values.get('tool_calls') or 0}")
    if values.get("unpriced_calls"):
        metrics.add(
            Text(f"unpriced_calls: {values['unpriced_calls']} (no known price)", style="yellow")
        )
    # cost_complete is what unpriced_calls already says
    shown = {
        "total_cost",
        "total_tokens",
        "llm_calls",
        "tool_calls",
        "unpriced_calls",
        "cost_complete",
    }
    for key, value in values.items():
        if (
            key not in shown
            and value not in (None, 0)
            and key not in ("prompt_tokens", "completion_tokens")
        ):
            metrics.add(f"{key}: {_shorten(value, 60)}")

    children: dict[str, list[dict]] = {}
    if trace:
        for run in trace:
            if run.get("parent_id"):
                children.setdefault(run["parent_id"], []).append(run)
    else:
        children[execution["id"]] = list(execution.get("children") or [])
    nested = _descendants(execution["id"], children)
    if nested:
        runs = [execution, *nested]
        costs = [_metric(r, "total_cost") for r in runs]
        known = [c for c in costs if c is not None]
        total = fmt_money(sum(known)) + ("+" if len(known) < len(costs) else "")
        tokens = sum(_metric(r, "total_tokens") or 0 for r in runs)
        metrics.add(
            f"including {len(nested)} nested run{'s' if len(nested) != 1 else ''}: {total}, {fmt_tokens(tokens)} tokens"
        )
    own_events = len(execution.get("events") or [])
    timeline = Tree(
        f"Events Timeline ({own_events} event{'s' if own_events != 1 else ''})", guide_style="dim"
    )
    _add_timeline(timeline, execution, children, origin, now)
    return Group(title, Text(""), info, Text(""), metrics, Text(""), timeline)


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


def render_cost_table(rows: list[dict[str, Any]], group_by: str = "agent") -> Panel:
    """The "Cost by Agent" (or by model) panel: one row per group, then a Total row."""
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
        make=_ruled,
        header_row=True,
    )
    total = cost_totals(rows)
    for index, row in enumerate(rows):
        cost = row.get("cost") or 0.0
        table.add_row(
            str(row.get(key) if row.get(key) is not None else "?"),
            f"{row.get('calls') or 0:,}",
            fmt_tokens(row.get("tokens") or 0),
            _cost_cell(row),
            fmt_percent(100.0 * cost / total["cost"]) if total["cost"] > 0 else "-",
            end_section=index == len(rows) - 1,
        )
    table.add_row(
        "Total",
        f"{total['calls']:,}",
        fmt_tokens(total["tokens"]),
        _cost_cell(total),
        "100.0%" if total["cost"] > 0 else "-",
        style="bold",
    )
    return _panel(table, f"Cost by {label}")


def _bar(fraction: float, width: int) -> str:
    """A horizontal bar of `fraction` (0-1) of `width` cells, in eighths."""
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[part] if part else "")


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
        make=_ruled,
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
    return _panel(table, "Cost by Date")


def estimate_method(projection: dict[str, Any]) -> str:
    """How a monthly_projection row was made, in words (window, method)."""
    days = float(projection.get("window_days") or ESTIMATE_WINDOW_DAYS)
    span = f"{days:g}" if days.is_integer() else f"{days:.1f}"
    younger = " (all the telemetry there is)" if days < ESTIMATE_WINDOW_DAYS else ""
    return f"mean daily spend over the last {span} day{'s' if days != 1 else ''}{younger} x {MONTH_DAYS}"


def render_monthly_estimate(projection: dict[str, Any]) -> Text:
    """ "Estimated monthly cost: $X" and the lines saying how it was estimated."""
    text = Text("Estimated monthly cost: ", style="bold")
    text.append(fmt_money(projection.get("monthly_estimate") or 0.0), style="bold")
    spent = fmt_money(projection.get("window_cost") or 0.0)
    runs = projection.get("window_runs") or 0
    text.append(f"\n  = {estimate_method(projection)}", style="dim")
    text.append(f"\n    from {spent} spent in {runs:,} run{'s' if runs != 1 else ''}", style="dim")
    return text


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
            rows = self.store.cost_by_model_rows(since, agent_name, until=until)
        else:
            rows = self.store.run(
                f"cost_by_{group_by}", agent=agent_name, since=since, until=until
            ).rows()
        estimate = dict(
            self.store.monthly_projection(days=ESTIMATE_WINDOW_DAYS, agent_name=agent_name) or {}
        )
        estimate["method"] = estimate_method(estimate)
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
    ) -> dict[str, Any]:
        """Print cost by agent (or date, model) and the monthly estimate; returns the data shown."""
        data = self.cost_data(group_by, agent_name, since, until)
        if group_by == "date":
            self.console.print(render_cost_by_date(data["rows"]))
        else:
            self.console.print(render_cost_table(data["rows"], group_by))
        self.console.print()
        self.console.print(render_monthly_estimate(data["estimate"]))
        return data
