"""Ad-hoc SQL: a read-only guard over DuckDB's parse tree, then a sandboxed connection.

The sandbox is the wall: ad-hoc queries run in an in-memory DuckDB whose file
access was switched off and configuration locked before any query ran in it,
so no SQL can open a file, load an extension or loosen a setting. Each query
gets a connection of its own, on which the store's lake is registered as Arrow
datasets (pyarrow reads the files) and the SQLite tail as Arrow tables. It runs under
a memory limit and a time limit. The guard is a second wall with clearer
messages: one SELECT over the views and the CTEs in scope, no table function
but a few generators, no function that sleeps, plans SQL text or reads settings.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import pyarrow as pa

from kagura.observability.errors import QueryError
from kagura.observability.store.engine import (
    Result,
    Views,
    check_params,
    local_timezone,
    memory_database,
)

TIME_LIMIT = 60.0  # seconds an ad-hoc query may run
MEMORY_LIMIT = "2GB"  # DuckDB's buffer memory for one ad-hoc query

# What ad-hoc SQL may read: the public views, the CTEs in scope, and these table functions.
VIEWS = ("executions", "events", "scores")
SAFE_TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree", "generate_subscripts"}
)
# Scalar functions that reach outside the query: files, settings, logs, time, other SQL.
UNSAFE_FUNCTIONS = frozenset(
    {
        "getenv",
        "getvariable",
        "current_setting",
        "current_query",
        "write_log",
        "json_serialize_sql",
        "json_serialize_plan",
        "json_deserialize_sql",
        "json_execute_serialized_sql",
        "query",
        "query_table",
        "pg_sleep",
        "sleep_ms",
        "enable_logging",
        "disable_logging",
    }
)
# ... and every function whose name starts like these.
UNSAFE_PREFIXES = (
    "read_",
    "sleep",
    "pg_sleep",
    "json_serialize",
    "json_deserialize",
    "json_execute",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"[^\w\s]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def _lower(name: Any) -> str:
    """ASCII-only lowercase, as DuckDB folds identifiers (str.lower maps e.g. 'K' to 'k')."""
    return str(name).translate(_ASCII_LOWER)


# --- the sandbox ---------------------------------------------------------------------


def check_limits(time_limit: Any, memory_limit: Any) -> tuple[float, str]:
    """The limits as (seconds, DuckDB size); ValueError naming the bad one."""
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)):
        raise ValueError(f"time limit must be a number of seconds, got {time_limit!r}")
    if not 0 < time_limit <= 86400:
        raise ValueError(f"time limit must be between 0 and 86400 seconds, got {time_limit!r}")
    match = _MEMORY.fullmatch(memory_limit) if isinstance(memory_limit, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"memory limit must be a size such as 512MB or 2GB, got {memory_limit!r}")
    return float(time_limit), f"{match.group(1)}{match.group(2)}"


def run_sandboxed(
    text: str,
    params: dict[str, Any],
    views: Views,
    label: str = "query",
    time_limit: float = TIME_LIMIT,
    memory_limit: str = MEMORY_LIMIT,
) -> Result:
    """Run one query on a fresh DuckDB that reads only `views`; QueryError when it fails or overruns."""
    import duckdb

    seconds, memory = check_limits(time_limit, memory_limit)
    wanted = check_params(text, params, label)
    bound = {name: params.get(name) for name in wanted}
    try:
        statements = len(duckdb.extract_statements(text))
    except duckdb.Error as exc:
        raise QueryError(f"query does not parse: {_first_line(exc)}") from None
    if statements != 1:
        # One statement inside the transaction that is rolled back after it.
        raise QueryError(f"give exactly one statement, not {statements}")
    con = _sandbox_connection(memory)
    try:
        try:
            _register(con, views)
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            raise QueryError(f"{label}: cannot open the store's data: {_first_line(exc)}") from None
        # Whatever a query might create in the shared database is rolled back after it.
        con.execute("BEGIN TRANSACTION")
        timer = threading.Timer(seconds, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            relation = con.sql(text, params=bound) if bound else con.sql(text)
            table = relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.InterruptException:
            raise QueryError(
                f"{label} stopped at the time limit of {seconds:g}s: narrow it (a time window, "
                "a LIMIT) or allow more time (--time-limit, time_limit=)"
            ) from None
        except duckdb.OutOfMemoryException:
            raise QueryError(
                f"{label} needs more than the memory limit of {memory}: narrow it or allow "
                "more memory (--memory-limit, memory_limit=)"
            ) from None
        except duckdb.Error as exc:
            shown = f" (params: {bound})" if bound else ""
            error = QueryError(f"{label} failed: {_first_line(exc)}{shown}")
            error.sql = text
            raise error from None
        finally:
            timer.cancel()
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the query ended the transaction itself, or it failed and DuckDB did
    finally:
        con.close()
    return Result(table, label)


# Locked in-memory databases, by (process, time zone, memory limit): each query gets a
# connection of its own to one of them, whose temporary views no other query sees.
_databases: dict[tuple[int, str, str], Any] = {}
_databases_lock = threading.Lock()


def _sandbox_connection(memory: str):
    """A new connection to a database that was cut off and locked before any query ran in it."""
    key = (os.getpid(), local_timezone(), memory)
    with _databases_lock:
        database = _databases.get(key)
        if database is None:
            database = memory_database({"python_enable_replacements": False}, key[1])
            database.execute(f"SET memory_limit = '{memory}'")
            database.execute("SET temp_directory = ''")  # no spilling: over the limit is an error
            database.execute("SET enable_external_access = false")
            database.execute("SET lock_configuration = true")
            _databases[key] = database
        return database.cursor()


def _register(con, views: Views) -> None:
    """Show the views' data as `executions`, `events` (and `scores` when read): Arrow reads the
    files, DuckDB never opens a path."""
    import pyarrow.dataset as ds

    from kagura.observability.store.engine import register_shared
    from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

    shared = register_shared(con, views)
    for name, files, schema, tail in (
        ("executions", views.execution_files, EXECUTIONS_SCHEMA, views.tail_executions),
        ("events", views.event_files, EVENTS_SCHEMA, views.tail_events),
    ):
        con.register(f"_kagura_tail_{name}", tail)
        # The lake stores a root run's trace_id as NULL: it is the run's own id.
        star = "* REPLACE (coalesce(trace_id, id) AS trace_id)" if name == "executions" else "*"
        lake = ""
        if files:
            con.register(f"_kagura_lake_{name}", ds.dataset(files, schema=schema, format="parquet"))
            lake = f"SELECT {star} FROM _kagura_lake_{name} UNION ALL "
        if name in shared:
            lake += f"SELECT {star} FROM {shared[name]} UNION ALL "
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS {lake}SELECT * FROM _kagura_tail_{name}"
        )
    for name, table in views.extra.items():
        con.register(f"_kagura_tail_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM _kagura_tail_{name}")


def _first_line(exc: BaseException) -> str:
    message = str(exc)
    return message.splitlines()[0] if message else type(exc).__name__


# --- the read-only guard ------------------------------------------------------------

_parser_lock = threading.Lock()
_parser = None


def _parse(statement: str) -> dict[str, Any]:
    """DuckDB's syntax tree of one SELECT statement, as JSON."""
    global _parser
    with _parser_lock:
        if _parser is None:
            # A connection that only parses: it never reads data or files.
            _parser = memory_database({"enable_external_access": False})
        tree = _parser.execute("SELECT json_serialize_sql(?)", [statement]).fetchall()[0][0]
    return json.loads(tree)


def check_read_only(text: str) -> set[str]:
    """The views a read-only query reads; QueryError saying why when it is not one SELECT over them."""
    import duckdb

    if not isinstance(text, str) or not text.strip():
        raise QueryError(
            "empty query: give one SELECT over the views executions, events and scores"
        )
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryError(f"query does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(
            f"give exactly one statement, not {len(statements)}: ad-hoc SQL runs a single SELECT"
        )
    kind = statements[0].type.name
    if kind != "SELECT":
        raise QueryError(
            f"only SELECT queries may run here, this is a {kind} statement: "
            "telemetry is read-only from `kagura monitor sql`"
        )
    tree = _parse(text)
    if tree.get("error"):
        raise QueryError(f"query does not parse: {tree.get('error_message')}")
    reads: set[str] = set()
    _walk(tree, frozenset(), reads)
    return reads


def _walk(node: Any, ctes: frozenset[str], reads: set[str]) -> None:
    """Check every table reference and function call of a syntax tree; `ctes` are the names in scope."""
    if isinstance(node, list):
        for item in node:
            _walk(item, ctes, reads)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict) and cte_map.get("map"):
        # A WITH clause names tables for its own query (and its CTE bodies) only.
        ctes = ctes | {
            _lower(entry["key"])
            for entry in cte_map["map"]
            if isinstance(entry, dict) and entry.get("key")
        }
    kind = node.get("type")
    if kind == "BASE_TABLE":
        _check_table(node, ctes, reads)
    elif kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = _function_name(function)
        if name not in SAFE_TABLE_FUNCTIONS:
            raise QueryError(
                f"table function {name}() is not allowed in ad-hoc SQL: read the views "
                f"executions and events (table functions allowed: {', '.join(sorted(SAFE_TABLE_FUNCTIONS))})"
            )
        for key, value in function.items():
            if key not in ("function_name", "qualified_name"):
                _walk(value, ctes, reads)
        for key, value in node.items():
            if key != "function":
                _walk(value, ctes, reads)
        return
    elif node.get("class") == "FUNCTION" and "function_name" in node:
        name = _function_name(node)
        if name in UNSAFE_FUNCTIONS or name.startswith(UNSAFE_PREFIXES):
            raise QueryError(f"function {name}() is not allowed in ad-hoc SQL")
    elif kind == "SHOW_REF" and node.get("query") is None and node.get("table_name"):
        name = str(node["table_name"]).strip('"')
        if _lower(name) not in VIEWS or not _IDENTIFIER.fullmatch(name):
            raise QueryError(
                "SHOW and DESCRIBE work on the views executions, events and scores only, "
                "e.g. DESCRIBE executions"
            )
        reads.add(_lower(name))
    for value in node.values():
        _walk(value, ctes, reads)


def _function_name(node: dict[str, Any]) -> str:
    """A called function's name, lowercased; QueryError when it is qualified or not plain ASCII."""
    raw = str(node.get("function_name", ""))
    path = (node.get("qualified_name") or {}).get("path") or [raw]
    if node.get("schema") or node.get("catalog") or len(path) > 1:
        shown = ".".join(str(p) for p in path)
        raise QueryError(f"{shown}(): call functions by their plain name in ad-hoc SQL")
    if _OPERATOR.fullmatch(raw):
        return raw  # +, /, ~~ (LIKE), ~~~ (GLOB), ...: operators reach nothing outside
    if not _IDENTIFIER.fullmatch(raw):
        raise QueryError(f"{raw!r}: function names in ad-hoc SQL are plain ASCII words")
    return _lower(raw)


def _check_table(table: dict[str, Any], ctes: frozenset[str], reads: set[str]) -> None:
    name = str(table.get("table_name") or "")
    path = (table.get("qualified_name") or {}).get("path") or [name]
    if table.get("catalog_name") or table.get("schema_name") or len(path) > 1:
        shown = ".".join(str(p) for p in path if p)
        raise QueryError(f"{shown}: read the views executions, events and scores, unqualified")
    if not _IDENTIFIER.fullmatch(name) or (_lower(name) not in VIEWS and _lower(name) not in ctes):
        raise QueryError(
            f"{name!r} is not a view: ad-hoc SQL reads the views executions, events and scores "
            "(and the CTEs it defines), never files or other tables"
        )
    if _lower(name) in VIEWS and _lower(name) not in ctes:
        reads.add(_lower(name))
