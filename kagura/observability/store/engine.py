"""The DuckDB runner: the only code that talks to DuckDB.

Each analytic is one file `sql/NAME.sql` with a header and named `$params`.
The runner defines the views `executions` and `events` over a snapshot (the
listed Parquet files of the lake UNION ALL the SQLite tail as Arrow), binds
the params (never pasted into SQL text) and returns a `Result`.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import duckdb
import pyarrow as pa

from kagura.observability.errors import QueryError

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

_PARAM = re.compile(r"(?<![\w$])\$([A-Za-z_][A-Za-z0-9_]*)")
_HEADER = re.compile(r"^--\s*([A-Za-z_]+):\s*(.*)$")


def sql_dir() -> Path:
    """The folder of SQL files: the packaged copy first, then the repository's `sql/`."""
    packaged = Path(__file__).resolve().parents[2] / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of `sql/NAME.sql`; QueryError listing the known names when missing."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name or ""):
        raise QueryError(f"no query named {name!r}; see `kagura monitor sql --list`")
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(q["name"] for q in catalogue())
        raise QueryError(f"no query named {name!r}; known: {known}")
    return path.read_text(encoding="utf-8")


def header_lines(text: str) -> list[str]:
    """The comment lines a SQL file begins with (its header), as they are written."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def parse_header(text: str) -> dict[str, str]:
    """The header fields of a SQL file: summary (first line), grain, params, reads."""
    header: dict[str, str] = {}
    for line in header_lines(text):
        match = _HEADER.match(line)
        if match:
            key, value = match.groups()
            if not header:
                header["name"], header["summary"] = key, value.strip()
            elif key in ("grain", "params", "reads"):
                header[key] = value.strip()
    return header


def catalogue() -> list[dict[str, Any]]:
    """Every SQL file: name, summary, grain, params, reads (from its header), by name."""
    entries = []
    for path in sorted(sql_dir().glob("*.sql")):
        header = parse_header(path.read_text(encoding="utf-8"))
        text = path.read_text(encoding="utf-8")
        entries.append(
            {
                "name": path.stem,
                "summary": header.get("summary", ""),
                "grain": header.get("grain", ""),
                "params": sorted(set(_PARAM.findall(_strip_comments(text)))),
                "reads": header.get("reads", ""),
            }
        )
    return entries


def param_names(text: str) -> list[str]:
    """The `$names` a SQL text uses, in order of first use."""
    return list(dict.fromkeys(_PARAM.findall(_strip_comments(text))))


def check_params(text: str, params: dict[str, Any], label: str) -> list[str]:
    """The parameter names `text` takes; QueryError (naming `label`) for any given one it does not."""
    wanted = param_names(text)
    unknown = set(params) - set(wanted)
    if unknown:
        raise QueryError(
            f"{label}: unknown parameter(s) {', '.join(sorted(unknown))}; it takes: {', '.join(wanted) or 'none'}"
        )
    return wanted


def reads_of(text: str) -> str:
    """The views a catalogue file says it reads in its `-- reads:` header line (default: both)."""
    for line in header_lines(text):
        if line.startswith("-- reads:"):
            return line.split(":", 1)[1]
    return "executions, events"


def _strip_comments(text: str) -> str:
    text = re.sub(r"--[^\n]*", "", text)
    return re.sub(r"'(?:[^']|'')*'", "''", text)


class Result:
    """One query's answer: `.rows()` dicts, `.pl()` Polars, `.arrow()` Arrow.

    It also reads as both at once, so an analytic needs one method, not a
    dict method and a frame method: iterating it (or `result[0]`) gives row
    dicts, `result["cost"]` gives a column, and any other attribute is the
    Polars frame's (`result.sort("cost")`, `result.tail(3)`, `result.filter(...)`).
    """

    def __init__(self, table: pa.Table, name: str = "query"):
        self._table = table
        self.name = name
        self._rows: list[dict[str, Any]] | None = None

    @property
    def columns(self) -> list[str]:
        """The column names, in order."""
        return self._table.column_names

    def __len__(self) -> int:
        return self._table.num_rows

    def arrow(self) -> pa.Table:
        """The rows as an Arrow table."""
        return self._table

    def rows(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts (new dicts each call)."""
        return self._table.to_pylist()

    def _cached_rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = self._table.to_pylist()
        return self._rows

    def pl(self) -> pl.DataFrame:
        """The rows as a Polars DataFrame."""
        import polars as pl

        frame = pl.from_arrow(self._table)
        assert isinstance(frame, pl.DataFrame)  # a Table (not an Array) gives a frame
        return frame

    def first(self) -> dict[str, Any] | None:
        """The first row as a dict, or None."""
        return self._table.slice(0, 1).to_pylist()[0] if self._table.num_rows else None

    def one(self) -> dict[str, Any]:
        """The row of a query that always returns one (an aggregate); QueryError otherwise."""
        row = self.first()
        if row is None:
            raise QueryError(f"{self.name} returned no row")
        return row

    # --- a sequence of row dicts --------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._cached_rows())

    @overload
    def __getitem__(self, key: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, key: slice) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, key: str) -> Any: ...

    def __getitem__(self, key: int | slice | str) -> Any:
        """A row dict (`result[0]`), a list of them (`result[:5]`), or a column (`result["cost"]`)."""
        if isinstance(key, str):
            return self.pl()[key]
        return self._cached_rows()[key]

    def __eq__(self, other: object) -> bool:
        """Equal to a Result or a list of dicts with the same rows."""
        if isinstance(other, Result):
            return self._cached_rows() == other._cached_rows()
        if isinstance(other, list):
            return self._cached_rows() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by its rows, which can change

    # --- and a Polars frame ---------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.pl(), name)

    def __dir__(self) -> list[str]:
        import polars as pl

        frame = {n for n in dir(pl.DataFrame) if not n.startswith("_")}
        return sorted(set(super().__dir__()) | frame)

    def _repr_html_(self) -> str:
        """A notebook shows a Result as it shows the Polars frame."""
        return self.pl()._repr_html_()

    def __repr__(self) -> str:
        return f"Result({self.name!r}, rows={self._table.num_rows}, columns={self.columns})"


class Row(Result, Mapping[str, Any]):
    """The answer of an analytic whose grain is one row (a summary, a budget): a Result that reads as that row's dict.

    `row["today_cost"]` is a value, `dict(row)`, `row.keys()`, `row.get(...)`
    work as on a dict; `.rows()`, `.pl()` and `.arrow()` as on every Result.
    """

    def __init__(self, table: pa.Table, name: str = "query"):
        super().__init__(table, name)
        if table.num_rows != 1:
            raise QueryError(f"{name} returned {table.num_rows} rows, not one")

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.columns)

    def __getitem__(self, key: Any) -> Any:
        return self._cached_rows()[0][key]

    def __eq__(self, other: object) -> bool:
        """Equal to a dict (or a Row) with the same keys and values."""
        if isinstance(other, Mapping):
            return self._cached_rows()[0] == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._cached_rows()[0])


@dataclass
class Views:
    """What the views `executions` and `events` show: lake files plus tail tables.

    For a query read from rollups (planner.py) three more views are made:
    `rollups` (the rollup files), and `rolled_executions` / `rolled_events`
    (raw rows of segments that have rollups, for the hours the rollups can't
    answer); `executions` and `events` then hold only what no rollup covers.
    """

    execution_files: list[str]
    event_files: list[str]
    tail_executions: pa.Table
    tail_events: pa.Table
    key: tuple = field(default=())
    # Files of a shared lake (paths relative to it), read through Arrow datasets.
    shared: Any = None
    shared_execution_files: list[str] = field(default_factory=list)
    shared_event_files: list[str] = field(default_factory=list)
    # Other tables shown as views of their name (e.g. `scores`, read from the tail).
    extra: dict[str, pa.Table] = field(default_factory=dict)
    rollup_files: list[str] | None = None  # None: no rollup views
    rollup_table: pa.Table | None = None  # the rollup rows in memory, read instead of rollup_files
    rolled_execution_files: list[str] = field(default_factory=list)
    rolled_event_files: list[str] = field(default_factory=list)
    # The [start, end) ranges whose rows the rolled views show (None: all their rows): the
    # edge hours the rollups don't answer, so the scan skips the row groups between them.
    # `rolled_reach_back`: the query reads events, whose runs can start before the spans.
    rolled_ranges: tuple[tuple[float, float], ...] | None = None
    rolled_reach_back: bool = False
    # Rows of lake files already decoded (store/newest.py), shown in `executions` beside
    # its files; chosen per query, so registered at each run like `rollup_table`.
    newest: pa.Table | None = None


def local_timezone() -> str:
    """The machine's IANA time zone name (TZ, /etc/localtime), or UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def memory_database(
    config: dict[str, Any], timezone: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB that never fetches an extension, with `config`; in `timezone`
    (UTC when DuckDB does not know it) when given, and without a progress bar."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            **config,
        },
    )
    if timezone is not None:
        try:
            con.execute(f"SET TimeZone = '{timezone}'")
        except duckdb.Error:
            con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting at all
    return con


class Runner:
    """An in-memory DuckDB that answers SQL over one store's snapshot."""

    def __init__(self):
        self._con = memory_database({"enable_external_access": True}, local_timezone())
        # Lake files never change once written (new data gets new names).
        self._con.execute("SET parquet_metadata_cache = true")
        self._local = threading.local()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def _cursor(self, views: Views) -> duckdb.DuckDBPyConnection:
        """A cursor of this thread whose views show `views` (a few are kept, by key)."""
        cursors: dict[tuple, duckdb.DuckDBPyConnection] | None = getattr(
            self._local, "cursors", None
        )
        if cursors is None:
            cursors = self._local.cursors = {}
        cur = cursors.get(views.key) if views.key else None
        if cur is not None:
            return cur
        while len(cursors) >= _CURSORS_KEPT:
            gone, old = cursors.popitem()  # most recent first out: keys rarely come back
            self._shown().pop(gone, None)
            old.close()
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.register("_kagura_tail_executions", views.tail_executions)
            cur.register("_kagura_tail_events", views.tail_events)
            shared = register_shared(cur, views)
            shown: dict[str, Any] = {"ranges": views.rolled_ranges}
            _register_chosen(cur, views, shown)
            cur.execute(
                _view_sql(
                    "executions",
                    views.execution_files,
                    "_kagura_tail_executions",
                    shared.get("executions"),
                    "_kagura_newest" if views.newest is not None else None,
                )
            )
            cur.execute(
                _view_sql("events", views.event_files, "_kagura_tail_events", shared.get("events"))
            )
            for name, table in views.extra.items():
                cur.register(f"_kagura_tail_{name}", table)
                cur.execute(_view_sql(name, [], f"_kagura_tail_{name}"))
            if views.rollup_files is not None:
                _rollup_views(cur, views)
        except BaseException:
            cur.close()
            raise
        if views.key:
            cursors[views.key] = cur
            self._shown()[views.key] = shown
        return cur

    def _shown(self) -> dict[tuple, dict[str, Any]]:
        """What each kept cursor of this thread shows that changes per query, by views key:
        the tables registered by _register_chosen (by name) and the edge spans of the
        rolled views ("ranges")."""
        shown: dict[tuple, dict[str, Any]] | None = getattr(self._local, "shown", None)
        if shown is None:
            shown = self._local.shown = {}
        return shown

    def run(
        self, text: str, params: dict[str, Any], views: Views, label: str, small: bool = False
    ) -> Result:
        """Run SQL `text` with named `params` over `views`; QueryError names label, params and cause.

        `small`: the answer is a few rows (a planned analytic, a page of runs): run as a
        DB-API statement, parsed and bound once. A relation (the default) parses and binds
        twice, 5-8 ms of a 20 ms answer, but hands a large answer over without a copy.
        """
        wanted = check_params(text, params, label)
        bound = {name: params.get(name) for name in wanted}
        try:
            cur = self._cursor(views)
            shown = self._shown().setdefault(views.key, {}) if views.key else {}
            _register_chosen(cur, views, shown)
            if views.rollup_files is not None and shown.get("ranges") != views.rolled_ranges:
                _rolled_views(cur, views)  # the same files, other edge hours
                shown["ranges"] = views.rolled_ranges
            if small:
                table = cur.execute(text, bound).to_arrow_table()
            else:
                relation = cur.sql(text, params=bound) if bound else cur.sql(text)
                table = relation.to_arrow_table()
        except duckdb.Error as exc:
            raise _query_error(exc, label, bound, text, views) from exc
        return Result(table, label)


_CURSORS_KEPT = 6


def _register_chosen(cur: duckdb.DuckDBPyConnection, views: Views, shown: dict[str, Any]) -> None:
    """Register the tables a query chooses over the views made once per cursor (the rollup
    rows of planner.blocks, the newest runs kept decoded), those not already shown."""
    for name, table in (("_kagura_rollups", views.rollup_table), ("_kagura_newest", views.newest)):
        if table is not None and shown.get(name) is not table:
            cur.register(name, table)
            shown[name] = table


# A DB-API result's Arrow is one copy of the rows more than a relation's: Runner.run asks
# for it only for small answers, so DuckDB's hint is not for us (only this module's calls).
warnings.filterwarnings(
    "ignore",
    message="Arrow output on a DB-API result",
    category=UserWarning,
    module=r"kagura\.observability\.store\.engine",
)


def _query_error(exc: duckdb.Error, label: str, bound: dict, text: str, views: Views) -> QueryError:
    """One line: what failed and why; a damaged lake file is named, with the way to repair."""
    message = str(exc)
    first = message.splitlines()[0] if message else type(exc).__name__
    for path in (
        *views.execution_files,
        *views.event_files,
        *(views.rollup_files or ()),
        *views.rolled_execution_files,
        *views.rolled_event_files,
    ):
        if path in message:
            error = QueryError(
                f"lake file {path} is missing or damaged ({first.split(':', 1)[0]}); "
                "run `kagura monitor doctor --repair`"
            )
            break
    else:
        shown = f" (params: {bound})" if bound else ""
        error = QueryError(f"{label} failed: {first}{shown}")
    error.sql = text
    return error


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _rollup_views(cur: duckdb.DuckDBPyConnection, views: Views) -> None:
    """The views `rollups`, `rolled_executions` and `rolled_events` of a planned query.

    Files of a shared lake (`host=<id>/...`) are read through its filesystem:
    rollups whole into memory (kept there: small, and never changed), the runs
    of edge hours as Arrow datasets, as the shared scan reads them.
    """
    from kagura.observability.store.rollups import ROLLUP_SCHEMA

    cur.register("_kagura_no_rollups", ROLLUP_SCHEMA.empty_table())
    cur.register("_kagura_no_executions", views.tail_executions.schema.empty_table())
    cur.register("_kagura_no_events", views.tail_events.schema.empty_table())
    if views.rollup_table is not None:  # registered by _register_chosen
        cur.execute("CREATE OR REPLACE TEMP VIEW rollups AS SELECT * FROM _kagura_rollups")
    else:
        _union_view(
            cur, views, "rollups", views.rollup_files or [], "_kagura_no_rollups", ROLLUP_SCHEMA
        )
    _rolled_views(cur, views)


def _rolled_views(cur: duckdb.DuckDBPyConnection, views: Views) -> None:
    """The views `rolled_executions` and `rolled_events`: rows of the edge hours (Views.rolled_ranges)."""
    from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

    ranges = views.rolled_ranges
    reach_back = views.rolled_reach_back
    _union_view(
        cur,
        views,
        "rolled_executions",
        views.rolled_execution_files,
        "_kagura_no_executions",
        EXECUTIONS_SCHEMA,
        # A call in an edge span finds its run's agent among these runs, and a run can start
        # days before its calls: with events, every run started before the last span ends.
        None
        if ranges is None
        else ([(None, max((hi for _, hi in ranges), default=0.0))] if reach_back else ranges),
    )
    _union_view(
        cur,
        views,
        "rolled_events",
        views.rolled_event_files,
        "_kagura_no_events",
        EVENTS_SCHEMA,
        ranges,
    )


def _union_view(
    cur: duckdb.DuckDBPyConnection,
    views: Views,
    name: str,
    files: list[str],
    empty: str,
    schema: pa.Schema,
    ranges: Sequence[tuple[float | None, float]] | None = None,
) -> None:
    """View NAME over these lake files (local ones by DuckDB, a shared lake's as Arrow), or
    the empty table `empty`; only rows started in `ranges` when given."""
    from kagura.observability.store.shared_lake import is_shared

    shared = [f for f in files if views.shared is not None and is_shared(f)]
    local = [f for f in files if f not in set(shared)]
    star = "* REPLACE (coalesce(trace_id, id) AS trace_id)" if name == "rolled_executions" else "*"
    where = ""
    if ranges is not None:
        # Floats the planner computed, written as literals (repr is exact): a plain range on
        # started_at is what DuckDB checks against each row group's statistics.
        where = " WHERE " + (
            " OR ".join(
                f"(started_at < {hi!r})"
                if lo is None
                else f"(started_at >= {lo!r} AND started_at < {hi!r})"
                for lo, hi in ranges
            )
            or "false"
        )
    parts = [_read_parquet(star, local) + where] if local else []
    if shared:
        lake = views.shared
        source = lake.tables(shared, schema) if name == "rollups" else lake.dataset(shared, schema)
        cur.register(f"_kagura_shared_{name}", source)
        parts.append(f"SELECT {star} FROM _kagura_shared_{name}{where}")
    if not parts:
        parts.append(f"SELECT * FROM {empty}")
    cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS " + " UNION ALL BY NAME ".join(parts))


def register_shared(cur, views: Views) -> dict[str, str]:
    """Register the shared lake's files of `views` as Arrow datasets; {view: registered name}."""
    if views.shared is None:
        return {}
    from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

    names = {}
    for name, files, schema in (
        ("executions", views.shared_execution_files, EXECUTIONS_SCHEMA),
        ("events", views.shared_event_files, EVENTS_SCHEMA),
    ):
        if files:
            cur.register(f"_kagura_shared_{name}", views.shared.dataset(files, schema))
            names[name] = f"_kagura_shared_{name}"
    return names


def _read_parquet(star: str, files: list[str]) -> str:
    """SELECT `star` from these lake files; by name, so that segments written before a
    column was added read it as NULL."""
    listed = ", ".join(_quote(f) for f in files)
    return (
        f"SELECT {star} FROM read_parquet([{listed}], hive_partitioning = false, "
        "union_by_name = true)"
    )


def _view_sql(
    name: str, files: list[str], tail: str, shared: str | None = None, decoded: str | None = None
) -> str:
    # The lake stores a root run's trace_id as NULL: it is the run's own id.
    star = "* REPLACE (coalesce(trace_id, id) AS trace_id)" if name == "executions" else "*"
    parts = [_read_parquet(star, files)] if files else []
    if shared:
        # An Arrow dataset of the lake schema: older files' missing columns read as NULL.
        parts.append(f"SELECT {star} FROM {shared}")
    if decoded:
        parts.append(f"SELECT {star} FROM {decoded}")  # lake rows already decoded
    parts.append(f"SELECT * FROM {tail}")
    return f"CREATE OR REPLACE TEMP VIEW {name} AS " + " UNION ALL BY NAME ".join(parts)
