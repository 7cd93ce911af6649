"""The SQLite hot tail: schema, migrations, appends, and snapshots read as Arrow.

Every finished (or starting) execution is one short `BEGIN IMMEDIATE`
transaction on a long-lived per-thread connection in WAL mode. Readers take a
snapshot of the tail rows and the lake's manifest in one read transaction.
The schema changes only by appending to MIGRATIONS.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from kagura.observability.errors import NotAStoreError, SchemaTooNewError, StoreError
from kagura.observability.model import (
    EVENT_COLUMNS,
    EVENT_NAMES,
    EXECUTION_COLUMNS,
    EXECUTION_NAMES,
)

# 'KGRA': marks a SQLite file as a kagura telemetry store (PRAGMA application_id).
APPLICATION_ID = 0x4B475241
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000

_SQL_TYPES = {"text": "TEXT", "real": "REAL", "int": "INTEGER", "json": "TEXT"}
ARROW_TYPES = {"text": pa.string(), "real": pa.float64(), "int": pa.int64(), "json": pa.string()}

EXECUTIONS_SCHEMA = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in EXECUTION_COLUMNS])
EVENTS_SCHEMA = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in EVENT_COLUMNS])


def _columns_ddl(columns: Sequence[tuple[str, str]], not_null: set[str]) -> str:
    return ",\n  ".join(
        f"{name} {_SQL_TYPES[kind]}{' NOT NULL' if name in not_null else ''}"
        for name, kind in columns
    )


def _m001_initial(con: sqlite3.Connection) -> None:
    exec_cols = [c for c in EXECUTION_COLUMNS if c[0] != "id"]
    con.execute(
        "CREATE TABLE executions (\n  id TEXT PRIMARY KEY,\n  "
        + _columns_ddl(exec_cols, {"agent_name", "started_at", "status"})
        + "\n)"
    )
    con.execute("CREATE INDEX executions_started_at ON executions (started_at)")
    con.execute(
        "CREATE TABLE events (\n  "
        + _columns_ddl(EVENT_COLUMNS, {"execution_id", "seq", "type", "started_at"})
        + ",\n  PRIMARY KEY (execution_id, seq)\n) WITHOUT ROWID"
    )
    # The lake's manifest: one row per segment (a pair of Parquet files).
    con.execute(
        """CREATE TABLE segments (
  id TEXT PRIMARY KEY,
  date TEXT NOT NULL,
  executions_path TEXT NOT NULL,
  events_path TEXT NOT NULL,
  min_started_at REAL NOT NULL,
  max_started_at REAL NOT NULL,
  executions INTEGER NOT NULL,
  events INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  created_at REAL NOT NULL
)"""
    )
    # Files taken out of the manifest, deleted once no reader can still hold them.
    con.execute("CREATE TABLE retired_files (path TEXT PRIMARY KEY, retired_at REAL NOT NULL)")


# Append only: a store at version N has run the first N of these.
MIGRATIONS = [_m001_initial]
SCHEMA_VERSION = len(MIGRATIONS)

_EXEC_INSERT = (
    f"INSERT INTO executions ({', '.join(EXECUTION_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in EXECUTION_NAMES)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in EXECUTION_NAMES if name != "id")
)
_EVENT_INSERT = (
    f"INSERT OR REPLACE INTO events ({', '.join(EVENT_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_NAMES)})"
)


@dataclass(frozen=True)
class Segment:
    """One listed pair of Parquet files in the lake."""

    id: str
    date: str
    executions_path: str
    events_path: str
    min_started_at: float
    max_started_at: float
    executions: int
    events: int
    bytes: int
    created_at: float


@dataclass
class TailSnapshot:
    """Tail rows and the manifest as of one SQLite read transaction."""

    executions: pa.Table
    events: pa.Table
    segments: list[Segment]
    taken_at: float


def check_store_file(path: Path) -> None:
    """Refuse a file at `path` that is not SQLite, before SQLite touches it."""
    if not path.exists():
        return
    if path.is_dir():
        raise NotAStoreError(f"{path} is a directory, not a telemetry database; pass a file path")
    if path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        header = f.read(16)
    if header != SQLITE_HEADER:
        raise NotAStoreError(
            f"{path} is not a kagura telemetry store (not a SQLite file); move it away or pass another --db"
        )


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Wal:
    """The SQLite tail of one store: a connection per thread, appends and snapshots."""

    def __init__(self, path: Path | None):
        self.path = path
        self._local = threading.local()
        self._pid = os.getpid()
        self._memory_con: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self.writes = 0  # bumped by this process's own commits: cache keys use it
        con = self._connect()
        self._migrate(con)

    # --- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            if self._memory_con is None:
                self._memory_con = sqlite3.connect(
                    ":memory:", isolation_level=None, check_same_thread=False
                )
            return self._memory_con
        check_store_file(self.path)
        create_private_file(self.path)
        try:
            con = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            con.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise NotAStoreError(
                f"{self.path} is not a readable telemetry store ({exc}); move it away or pass another --db"
            ) from exc
        if mode.lower() != "wal":
            raise StoreError(
                f"{self.path}: could not switch to WAL mode (got {mode}); is the folder writable?"
            )
        return con

    def con(self) -> sqlite3.Connection:
        """This thread's long-lived connection (a new one after a fork)."""
        if self.path is None:
            return self._connect()
        if os.getpid() != self._pid:
            self._local = threading.local()
            self._pid = os.getpid()
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
        if self._memory_con is not None:
            self._memory_con.close()
            self._memory_con = None

    def _migrate(self, con: sqlite3.Connection) -> None:
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise NotAStoreError(
                f"{self.path} is not a readable telemetry store ({exc}); move it away or pass another --db"
            ) from exc
        if app_id != APPLICATION_ID and (app_id != 0 or tables > 0):
            raise NotAStoreError(
                f"{self.path} is a SQLite database but not a kagura telemetry store; pass another --db"
            )
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{self.path} was written by a newer kagura (schema {version}, this one reads up to {SCHEMA_VERSION}); upgrade kagura-ai"
            )
        if version == SCHEMA_VERSION:
            return
        with self.write(con) as c:
            # Another process may have migrated while we waited for the lock.
            version = c.execute("PRAGMA user_version").fetchone()[0]
            for migration in MIGRATIONS[version:]:
                migration(c)
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def write(self, con: sqlite3.Connection | None = None) -> _WriteTxn:
        """A `BEGIN IMMEDIATE` transaction: `with wal.write() as con: ...`."""
        return _WriteTxn(self, con or self.con())

    # --- appends -----------------------------------------------------------

    def append_many(self, pairs: Iterable[tuple[dict[str, Any], Sequence[dict[str, Any]]]]) -> int:
        """Upsert executions and replace their events in one transaction; return the count."""
        exec_rows = []
        event_rows = []
        for execution, events in pairs:
            exec_rows.append(tuple(execution[name] for name in EXECUTION_NAMES))
            event_rows.extend(tuple(event[name] for name in EVENT_NAMES) for event in events)
        if not exec_rows:
            return 0
        with self.write() as con:
            con.executemany(_EXEC_INSERT, exec_rows)
            if event_rows:
                con.executemany(_EVENT_INSERT, event_rows)
        return len(exec_rows)

    # --- reads -------------------------------------------------------------

    def data_version(self) -> tuple[int, int]:
        """Changes when any connection commits: (SQLite's data_version, own writes)."""
        return self.con().execute("PRAGMA data_version").fetchone()[0], self.writes

    def snapshot(self, with_events: bool = True) -> TailSnapshot:
        """Tail rows and manifest, read in one transaction."""
        con = self.con()
        with self._read(con):
            executions = _to_arrow(
                con.execute(f"SELECT {', '.join(EXECUTION_NAMES)} FROM executions").fetchall(),
                EXECUTIONS_SCHEMA,
            )
            if with_events:
                events = _to_arrow(
                    con.execute(f"SELECT {', '.join(EVENT_NAMES)} FROM events").fetchall(),
                    EVENTS_SCHEMA,
                )
            else:
                events = EVENTS_SCHEMA.empty_table()
            segments = [
                Segment(*row)
                for row in con.execute(
                    f"SELECT {', '.join(Segment.__dataclass_fields__)} FROM segments"
                )
            ]
        return TailSnapshot(executions, events, segments, time.time())

    def events_for(self, execution_ids: Sequence[str]) -> pa.Table:
        """Tail events of some executions."""
        con = self.con()
        rows: list[tuple] = []
        for start in range(0, len(execution_ids), 500):
            chunk = execution_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows.extend(
                con.execute(
                    f"SELECT {', '.join(EVENT_NAMES)} FROM events WHERE execution_id IN ({marks})",
                    chunk,
                )
            )
        return _to_arrow(rows, EVENTS_SCHEMA)

    def _read(self, con: sqlite3.Connection) -> _ReadTxn:
        return _ReadTxn(self, con)


class _WriteTxn:
    def __init__(self, wal: Wal, con: sqlite3.Connection):
        self.wal, self.con = wal, con

    def __enter__(self) -> sqlite3.Connection:
        if self.wal.path is None:
            self.wal._memory_lock.acquire()
        try:
            self.con.execute("BEGIN IMMEDIATE")
        except BaseException:
            if self.wal.path is None:
                self.wal._memory_lock.release()
            raise
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.con.execute("COMMIT")
                self.wal.writes += 1
            else:
                self.con.execute("ROLLBACK")
        finally:
            if self.wal.path is None:
                self.wal._memory_lock.release()


class _ReadTxn:
    def __init__(self, wal: Wal, con: sqlite3.Connection):
        self.wal, self.con = wal, con

    def __enter__(self) -> sqlite3.Connection:
        if self.wal.path is None:
            self.wal._memory_lock.acquire()
        self.con.execute("BEGIN")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.con.execute("COMMIT")
        finally:
            if self.wal.path is None:
                self.wal._memory_lock.release()


def _to_arrow(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Rows from SQLite as an Arrow table of `schema` (types fixed, not guessed)."""
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        if pa.types.is_floating(field.type):
            # SQLite hands back ints for REAL columns that hold whole numbers.
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
