"""The sql/ catalogue on Apache Spark, over the same Parquet lake DuckDB reads.

`run(name, spark, lake, **params)` defines the views `executions` and `events`
in a SparkSession over a store's listed lake files (plus its SQLite tail, when
the lake is a local store), runs catalogue file `name` in Spark SQL (see
translate.py) and returns the same `Result` shape as `EventStore.run`. Local mode
in tests, the same code on a cluster. Needs pyspark (`pip install kagura-ai[spark]`)
and a Java runtime.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kagura.observability.errors import QueryError

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore
    from kagura.observability.store.engine import Result

__all__ = ["run", "session", "spark_sql", "views"]

DEFAULT_MASTER = "local[2]"


def session(master: str | None = None, app_name: str = "kagura"):
    """A SparkSession for the catalogue: `master` or KAGURA_SPARK_MASTER (default local[2]).

    Local mode gets few shuffle partitions and no web UI; on a cluster the
    cluster's own settings apply.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise QueryError(
            "the Spark engine needs pyspark: pip install 'kagura-ai[spark]' (and a Java runtime)"
        ) from exc
    master = master or os.environ.get("KAGURA_SPARK_MASTER") or DEFAULT_MASTER
    builder = SparkSession.builder.master(master).appName(app_name)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    quiet = Path(__file__).with_name("log4j2.properties")
    builder = builder.config(
        "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{quiet}"
    )
    if master.startswith("local"):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.adaptive.enabled", "true")
        )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j / Java start-up errors carry no common base class
        raise QueryError(f"cannot start Spark ({master}): {_first_line(exc)}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_sql(name: str) -> str:
    """The Spark SQL text of catalogue file `name` (its twin in sql/spark/, or transpiled)."""
    from kagura.spark.translate import spark_sql as text

    return text(name)


def run(name: str, spark_session: Any, lake: Any, **params: Any) -> Result:
    """Run catalogue file `name` on Spark over `lake`; return its Result (rows, Polars, Arrow).

    `lake` is an EventStore, the path of a store's database (its listed lake
    files and its tail are what DuckDB would read), or a shared lake
    (`s3://bucket/prefix`, read through hadoop-aws's `s3a://`, or a shared folder):
    every host's newest manifest.
    """
    from kagura.observability.store.engine import (
        Result,
        check_params,
        load_sql,
        local_timezone,
        reads_of,
    )
    from kagura.spark.translate import GLOB_SUFFIX, glob_params, glob_regex

    label = f"sql/{name}.sql"
    check_params(load_sql(name), params, label)
    text = spark_sql(name)
    bound = {p: params.get(p) for p in _markers(text) if not p.endswith(GLOB_SUFFIX)}
    for p in glob_params(text):
        value = params.get(p)
        bound[p + GLOB_SUFFIX] = None if value is None else glob_regex(str(value))
    bound = {k: _spark_value(v) for k, v in bound.items()}
    # Dates are local calendar days, as in DuckDB: the same time zone in both engines.
    spark_session.conf.set("spark.sql.session.timeZone", local_timezone())
    reads = reads_of(load_sql(name))
    views(spark_session, lake, events="events" in reads, scores="scores" in reads)
    try:
        frame = spark_session.sql(text, args=bound)
        table = frame.toArrow()
    except Exception as exc:  # pyspark's errors share no base class with a useful message
        error = QueryError(f"{label} failed on Spark: {_first_line(exc)}")
        error.sql = text
        raise error from exc
    return Result(table, label)


def views(spark_session: Any, lake: Any, events: bool = True, scores: bool = False) -> None:
    """Define the temp views `executions` and `events` of `spark_session` over `lake`.

    With `scores`, also the view `scores`: they live only in the store's SQLite file
    (never in the lake), so the driver reads them with the store's own reader.
    """
    from kagura.observability.store import scores as score_rows
    from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

    store, owned = _open(lake)
    try:
        if scores:
            table = score_rows.read_table(store._wal.con())
            spark_session.createDataFrame(table).createOrReplaceTempView("scores")
        snap = store._tail(with_events=events)
        exec_files = [_file(store, s.executions_path) for s in snap.segments]
        event_files = [_file(store, s.events_path) for s in snap.segments] if events else []
        tail_exec, tail_events = snap.executions, snap.events
    finally:
        if owned:
            store.close()
    executions = _frame(spark_session, exec_files, tail_exec, EXECUTIONS_SCHEMA)
    # The lake stores a root run's trace_id as NULL: it is the run's own id.
    from pyspark.sql import functions as F

    executions = executions.withColumn("trace_id", F.coalesce("trace_id", "id"))
    executions.createOrReplaceTempView("executions")
    if events:
        _frame(spark_session, event_files, tail_events, EVENTS_SCHEMA).createOrReplaceTempView(
            "events"
        )
    else:
        _frame(
            spark_session, [], EVENTS_SCHEMA.empty_table(), EVENTS_SCHEMA
        ).createOrReplaceTempView("events")


def _frame(spark_session: Any, files: list[str], tail: Any, schema: Any):
    """Lake files UNION ALL the tail rows, columns in the schema's order."""
    names = schema.names
    tail_df = spark_session.createDataFrame(tail.select(names).cast(schema))
    if not files:
        return tail_df
    lake_df = spark_session.read.schema(tail_df.schema).parquet(*files).select(*names)
    return lake_df.unionByName(tail_df) if tail.num_rows else lake_df


def _file(store: EventStore, rel: str) -> str:
    """Where Spark finds lake file `rel` of `store` (its own lake, or the shared one)."""
    from kagura.observability.store.shared_lake import is_shared

    if is_shared(rel) and store.shared is not None:
        return store.shared.engine_path(rel)
    return str((store.lake or Path()) / rel)  # an in-memory store lists no files


def _open(lake: Any) -> tuple[EventStore, bool]:
    from kagura.observability.eventstore import EventStore

    if isinstance(lake, EventStore):
        return lake, False
    text = str(lake)
    if "://" in text or (
        Path(text).expanduser().is_dir() and any(Path(text).expanduser().glob("host=*"))
    ):
        return EventStore(":memory:", lake=text), True  # a shared lake: the fleet
    path = Path(lake).expanduser()
    if path.is_dir() and path.with_suffix(".db").is_file():
        path = path.with_suffix(".db")  # the lake folder beside its store
    if not path.is_file():
        raise QueryError(f"no telemetry store at {path}; give a store's database file")
    return EventStore(path, auto_compact=False), True


def _markers(text: str) -> list[str]:
    """The `:name` parameter markers of Spark SQL `text`, outside comments and strings."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"'(?:[^'\\]|\\.|'')*'", "''", text)
    return list(dict.fromkeys(re.findall(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)", text)))


def _spark_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message.splitlines()[0]
