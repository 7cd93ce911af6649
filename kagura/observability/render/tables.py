"""Tables that fit the terminal's width: `FitTable`, its columns, bars and the panels."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, JustifyMethod, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

# Lines only above a section's last row (the Total row): the tutorial's look.
_RULED = box.Box("    \n    \n    \n    \n ── \n    \n    \n    \n")
_BLOCKS = " ▏▎▍▌▋▊▉█"


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
        justify: JustifyMethod | None = None,
        short: str | None = None,
        style: str = "",
    ):
        self.header = header
        self.kind = kind
        self.keep = keep
        self.min_width = min_width
        self.max_width = max_width
        self.justify: JustifyMethod = justify or ("right" if kind == "number" else "left")
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
            return bar(cell.share, width or 0)
        if isinstance(cell, Alt):
            return cell.full if cell.full.cell_len <= (width or 0) else cell.short
        return Text(cell) if isinstance(cell, str) else cell

    def __rich_console__(self, console: Console, options: Any):
        yield self.build(console, options, options.max_width)

    def __rich_measure__(self, console: Console, options: Any):
        from rich.measure import Measurement

        natural = min(self.natural_width(console, options), options.max_width)
        return Measurement(natural, natural)


def ruled() -> Table:
    """The borderless look of the dashboard's tables: a rule only above the Total row."""
    return Table(
        box=_RULED, show_header=False, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0)
    )


def panel(body: RenderableType, title: str) -> Panel:
    return Panel(body, title=title, title_align="left", box=box.SQUARE, expand=False)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of `fraction` (0-1) of `width` cells, in eighths."""
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[part] if part else "")
