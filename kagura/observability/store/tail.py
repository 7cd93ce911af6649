"""The SQLite hot tail: schema, migrations, appends, and snapshots read as Arrow.

Every finished (or starting) execution is one short `BEGIN IMMEDIATE`
transaction on a long-lived per-thread connection in WAL mode. Readers take a
snapshot of the tail rows and the lake's manifest in one read transaction.
The schema changes only by appending a migration to store/migrations.py.
"""

from __future__ import annotations

import itertools
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kagura.observability.errors import NotAStoreError, SchemaTooNewError, StoreBusy, StoreError
from kagura.observability.store.migrations import SCHEMA_VERSION, upgrade
from kagura.observability.store.rows import (
    EVENT_COLUMNS,
    EVENT_NAMES,
    EXECUTION_COLUMNS,
    EXECUTION_NAMES,
)

# 'KGRA': marks a SQLite file as a kagura telemetry store (PRAGMA application_id).
APPLICATION_ID = 0x4B475241
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000

ARROW_TYPES = {"text": pa.string(), "real": pa.float64(), "int": pa.int64(), "json": pa.string()}

EXECUTIONS_SCHEMA = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in EXECUTION_COLUMNS])
EVENTS_SCHEMA = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in EVENT_COLUMNS])
SEGMENTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("date", pa.string()),
        ("executions_path", pa.string()),
        ("events_path", pa.string()),
        ("min_started_at", pa.float64()),
        ("max_started_at", pa.float64()),
        ("executions", pa.int64()),
        ("events", pa.int64()),
        ("bytes", pa.int64()),
        ("created_at", pa.float64()),
        ("rollup_path", pa.string()),
    ]
)


# The tail's two generations (migration m006): writers append to the live one's tables;
# compaction seals it (the other becomes live) and empties the sealed tables whole.
GENERATIONS = (0, 1)
_EXEC_INSERT = tuple(
    f"INSERT OR REPLACE INTO executions_{g} ({', '.join(EXECUTION_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in EXECUTION_NAMES)})"
    for g in GENERATIONS
)
_EVENT_INSERT = tuple(
    f"INSERT OR REPLACE INTO events_{g} ({', '.join(EVENT_NAMES)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_NAMES)})"
    for g in GENERATIONS
)
_EVENTS_CLEAR = tuple(f"DELETE FROM events_{g} WHERE execution_id = ?" for g in GENERATIONS)
_EXEC_UNSEAL = tuple(f"DELETE FROM executions_{g} WHERE id = ?" for g in GENERATIONS)
_SEALED_ROWS = tuple(
    f"SELECT EXISTS (SELECT 1 FROM executions_{g}) OR EXISTS (SELECT 1 FROM events_{g})"
    for g in GENERATIONS
)
_exec_values = operator.itemgetter(*EXECUTION_NAMES)
_event_values = operator.itemgetter(*EVENT_NAMES)


def bump_generation(con: sqlite3.Connection) -> None:
    """Tell readers that tail rows were removed or changed in place (inside a write)."""
    con.execute("UPDATE state SET value = value + 1 WHERE key = 'generation'")


def live_generation(con: sqlite3.Connection) -> int:
    """The generation (0 or 1) whose tables writers append to now."""
    return con.execute("SELECT value FROM state WHERE key = 'live'").fetchone()[0]


def sealed_holds_rows(con: sqlite3.Connection, generation: int) -> bool:
    """True when the tables of `generation` hold any row."""
    return bool(con.execute(_SEALED_ROWS[generation]).fetchone()[0])


def delete_runs(con: sqlite3.Connection, where: str, params: Sequence[Any] = ()) -> int:
    """Inside a write: delete the runs matching `where` (over executions' columns) and their
    events, in both generations; return how many runs.

    The views' triggers would do the same row by row, and SQLite counts no change made
    through a view, so the store deletes from the tables.
    """
    for g in GENERATIONS:
        con.execute(
            f"DELETE FROM events_{g} WHERE execution_id IN (SELECT id FROM executions WHERE {where})",
            params,
        )
    return sum(
        con.execute(f"DELETE FROM executions_{g} WHERE {where}", params).rowcount
        for g in GENERATIONS
    )


def clear_rows(con: sqlite3.Connection) -> None:
    """Inside a write: empty every tail table (SQLite frees their pages whole)."""
    for g in GENERATIONS:
        con.execute(f"DELETE FROM events_{g}")
        con.execute(f"DELETE FROM executions_{g}")


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
    rollup_path: str | None = None  # its rollup file, None for a segment written without one


SEGMENT_NAMES = tuple(Segment.__dataclass_fields__)
_SERIALS = itertools.count(1)


@dataclass
class TailSnapshot:
    """Tail rows and the manifest as of one SQLite read transaction."""

    executions: pa.Table
    events: pa.Table
    segments: list[Segment]
    taken_at: float
    marked: float | None = None  # when the store last marked runs of dead processes abandoned
    has_running: bool = False
    serial: int = field(default_factory=lambda: next(_SERIALS))  # never reused, unlike id()


def check_store_file(path: Path) -> None:
    """Refuse a directory at the database path.

    The file itself is never opened here: closing any descriptor of a database
    file drops every SQLite lock this process holds on it (another store object
    may have it open), so SQLite alone reads it and says whether it is one.
    """
    if path.is_dir():
        raise NotAStoreError(f"{path} is a directory, not a telemetry database; pass a file path")


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Tail:
    """The SQLite tail of one store: a connection per thread, appends and snapshots."""

    def __init__(self, path: Path | None, *, read_only: bool = False):
        self.path = path
        # A store this process cannot write (a read-only folder or file): reads only,
        # through a read-only connection that creates no file beside the database.
        self.read_only = read_only and path is not None
        self._local = threading.local()
        self._pid = os.getpid()
        self._memory_con: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self.writes = 0  # bumped by this process's own commits: cache keys use it
        self._last: _Tail | None = None
        self._snapshot_lock = threading.Lock()
        if path is not None and self.read_only:
            check_store_file(path)
        elif path is not None:
            check_store_file(path)
            try:
                create_private_file(path)
            except OSError as exc:
                raise StoreError(
                    f"cannot create {path}: {exc.strerror or exc}; check the folder's permissions"
                ) from exc
        con = self._connect()
        if self.read_only:
            version = self._check_identity(con)
            if version != SCHEMA_VERSION:
                con.close()
                raise StoreError(
                    f"{path} is read-only here and at schema {version} (this kagura reads "
                    f"{SCHEMA_VERSION}): open it once where it can be written, to upgrade it"
                )
        else:
            self._migrate(con)
        if path is not None:
            self._local.con = con

    # --- connections -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            if self._memory_con is None:
                self._memory_con = sqlite3.connect(
                    ":memory:", isolation_level=None, check_same_thread=False
                )
            return self._memory_con
        if self.read_only:
            return self._connect_read_only()
        try:
            con = None
            con = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Look before touching: switching to WAL rewrites the file header.
            self._check_identity(con)
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            con.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint (and fsync) every ~40 MB of WAL rather than every 4 MB.
            con.execute("PRAGMA wal_autocheckpoint = 10000")
            con.execute("PRAGMA journal_size_limit = 67108864")
        except sqlite3.DatabaseError as exc:
            if con is not None:
                con.close()
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise StoreError(
                    f"cannot write {self.path}: the file or its folder is read-only; "
                    "check the permissions or pass another --db"
                ) from exc
            if isinstance(exc, sqlite3.OperationalError) and "locked" not in str(exc):
                raise StoreError(
                    f"cannot open {self.path}: {exc}; check the folder's permissions and free space"
                ) from exc
            raise NotAStoreError(
                f"{self.path} is not a readable telemetry store ({exc}); move it away or pass another --db"
            ) from exc
        except BaseException:
            if con is not None:
                con.close()
            raise
        if mode.lower() != "wal":
            raise StoreError(
                f"{self.path}: could not switch to WAL mode (got {mode}); is the folder writable?"
            )
        return con

    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection. Without a WAL to read, `immutable` spares SQLite the
        -shm file it would otherwise create (and could not, in a read-only folder)."""
        from urllib.parse import quote

        wal = Path(f"{self.path}-wal")
        immutable = not wal.exists() or wal.stat().st_size == 0
        uri = f"file:{quote(str(self.path))}?mode=ro" + ("&immutable=1" if immutable else "")
        try:
            con = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise NotAStoreError(
                f"{self.path} is not a readable telemetry store ({exc}); move it away or pass another --db"
            ) from exc
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
        """Close this thread's connections (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
        reader = getattr(self._local, "reader", None)
        if reader is not None:
            reader.close()
            self._local.reader = None
        if self._memory_con is not None:
            self._memory_con.close()
            self._memory_con = None

    def _check_identity(self, con: sqlite3.Connection) -> int:
        """The store's schema version; refuse foreign databases and newer schemas."""
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise StoreError(
                    f"cannot open {self.path}: the file or its folder is read-only; "
                    "check the permissions or pass another --db"
                ) from exc
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
        return version

    def _migrate(self, con: sqlite3.Connection) -> None:
        if self._check_identity(con) == SCHEMA_VERSION:
            return
        with self.write(con) as c:
            # Another process may have migrated while we waited for the lock.
            version = c.execute("PRAGMA user_version").fetchone()[0]
            upgrade(c, version)
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def write(self, con: sqlite3.Connection | None = None) -> _WriteTxn:
        """A `BEGIN IMMEDIATE` transaction: `with wal.write() as con: ...`."""
        if self.read_only:
            raise StoreError(f"{self.path} is read-only here: it can be read, not written")
        return _WriteTxn(self, con or self.con())

    # --- appends -----------------------------------------------------------

    def append_many(
        self,
        pairs: Iterable[tuple[dict[str, Any], Sequence[dict[str, Any]]]],
        *,
        wait: bool = True,
    ) -> int:
        """Upsert executions in one transaction; an execution given with events gets exactly those.

        One `executemany` per statement (SQLite keeps each prepared); the values of a
        row are read in column order by one C-level itemgetter. `wait=False` raises
        StoreBusy at once, writing nothing, when another connection holds the write lock.
        """
        exec_rows: list[tuple] = []
        cleared: list[tuple] = []
        event_rows: list[tuple] = []
        add_exec, add_cleared, add_events = exec_rows.append, cleared.append, event_rows.extend
        for execution, events in pairs:
            add_exec(_exec_values(execution))
            if events:
                add_cleared((execution["id"],))
                add_events(map(_event_values, events))
        if not exec_rows:
            return 0
        with _WriteTxn(self, self.con(), wait) as con:
            live = live_generation(con)
            sealed = 1 - live
            # While compaction moves a sealed generation, a run written again leaves it:
            # a run is in one generation only.
            unseal = sealed_holds_rows(con, sealed)
            con.executemany(_EXEC_INSERT[live], exec_rows)
            if unseal:
                con.executemany(_EXEC_UNSEAL[sealed], [(row[0],) for row in exec_rows])
            if event_rows:
                con.executemany(_EVENTS_CLEAR[live], cleared)
                if unseal:
                    con.executemany(_EVENTS_CLEAR[sealed], cleared)
                con.executemany(_EVENT_INSERT[live], event_rows)
        return len(exec_rows)

    # --- reads -------------------------------------------------------------

    def data_version(self) -> tuple[int, int, int]:
        """Changes when any connection commits: (connection, SQLite's data_version, own writes)."""
        con = self.con()
        return id(con), con.execute("PRAGMA data_version").fetchone()[0], self.writes

    def read_tables(self, queries: Sequence[tuple[str, pa.Schema]]) -> list[pa.Table]:
        """Run SELECTs (no params) in one read transaction; each result as Arrow of its schema."""
        con = self.con()
        with self._read(con):
            return [_to_arrow(con.execute(sql).fetchall(), schema) for sql, schema in queries]

    def snapshot(self, with_events: bool = True) -> TailSnapshot:
        """Tail rows and manifest as of one read transaction.

        The previous snapshot is kept: when the database has not changed it is
        returned as it is; otherwise only rows written since (higher `rev`) are
        read and merged in, unless rows were removed (a new generation).
        """
        key = self.data_version()
        with self._snapshot_lock:
            last = self._last
            if (
                last is not None
                and last.key == key
                and (last.events is not None or not with_events)
                and last.snapshot is not None
            ):
                return last.snapshot
            con = self.con()
            with self._read(con):
                generation = con.execute(
                    "SELECT value FROM state WHERE key = 'generation'"
                ).fetchone()[0]
                segments = [
                    Segment(*row)
                    for row in con.execute(f"SELECT {', '.join(SEGMENT_NAMES)} FROM segments")
                ]
                events_wanted = with_events or (last is not None and last.events is not None)
                if (
                    last is None
                    or last.generation != generation
                    or (with_events and last.events is None)
                ):
                    tail = _Tail.read_all(con, generation, events_wanted)
                else:
                    tail = last.read_since(con)
            tail.key = key
            tail.snapshot = TailSnapshot(
                tail.executions,
                tail.events if tail.events is not None else EVENTS_SCHEMA.empty_table(),
                segments,
                time.time(),
            )
            self._last = tail
            return tail.snapshot

    def _read(self, con: sqlite3.Connection) -> _ReadTxn:
        return _ReadTxn(self, con)


_EXEC_SELECT = f"SELECT rev, {', '.join(EXECUTION_NAMES)} FROM executions"
_EVENT_SELECT = f"SELECT rev, {', '.join(EVENT_NAMES)} FROM events"


class _Tail:
    """A reader's copy of the tail and the highest `rev` it has seen of each table."""

    def __init__(
        self,
        generation: int,
        executions: pa.Table,
        events: pa.Table | None,
        exec_rev: int,
        event_rev: int,
    ):
        self.generation = generation
        self.executions = executions
        self.events = events
        self.exec_rev = exec_rev
        self.event_rev = event_rev
        self.key: tuple = ()
        self.snapshot: TailSnapshot | None = None

    @classmethod
    def read_all(cls, con: sqlite3.Connection, generation: int, with_events: bool) -> _Tail:
        executions, exec_rev = _read_rev(con, _EXEC_SELECT, EXECUTIONS_SCHEMA)
        events, event_rev = (
            _read_rev(con, _EVENT_SELECT, EVENTS_SCHEMA) if with_events else (None, 0)
        )
        return cls(generation, executions, events, exec_rev, event_rev)

    def read_since(self, con: sqlite3.Connection) -> _Tail:
        """A new copy with the rows written after this one merged in (same generation)."""
        new_exec, exec_rev = _read_rev(
            con, f"{_EXEC_SELECT} WHERE rev > {self.exec_rev}", EXECUTIONS_SCHEMA
        )
        executions = self.executions
        if new_exec.num_rows:
            stale = pc.is_in(executions.column("id"), value_set=new_exec.column("id"))
            executions = pa.concat_tables([executions.filter(pc.invert(stale)), new_exec])
        events = self.events
        event_rev = self.event_rev
        if events is not None:
            new_events, event_rev = _read_rev(
                con, f"{_EVENT_SELECT} WHERE rev > {self.event_rev}", EVENTS_SCHEMA
            )
            if new_events.num_rows:
                # An execution written with events has exactly those events now.
                stale = pc.is_in(
                    events.column("execution_id"), value_set=new_events.column("execution_id")
                )
                events = pa.concat_tables([events.filter(pc.invert(stale)), new_events])
            event_rev = max(event_rev, self.event_rev)
        return _Tail(self.generation, executions, events, max(exec_rev, self.exec_rev), event_rev)


def _read_rev(con: sqlite3.Connection, sql: str, schema: pa.Schema) -> tuple[pa.Table, int]:
    """Rows of `sql` (whose first column is rev) as Arrow, and the highest rev among them."""
    table = _to_arrow(con.execute(sql).fetchall(), pa.schema([("rev", pa.int64()), *schema]))
    top = pc.max(table.column("rev")).as_py() if table.num_rows else 0
    return table.drop_columns(["rev"]), top or 0


class _WriteTxn:
    """BEGIN IMMEDIATE ... COMMIT; SQLite's errors come out as StoreError naming the file."""

    def __init__(self, wal: Tail, con: sqlite3.Connection, wait: bool = True):
        self.wal, self.con, self.wait = wal, con, wait

    def __enter__(self) -> sqlite3.Connection:
        if self.wal.path is None:
            self.wal._memory_lock.acquire()
        try:
            if self.wait:
                self.con.execute("BEGIN IMMEDIATE")
            else:
                self._begin_now()
        except BaseException as exc:
            if self.wal.path is None:
                self.wal._memory_lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _write_error(self.wal.path, exc) from exc
            raise
        return self.con

    def _begin_now(self) -> None:
        """BEGIN IMMEDIATE without waiting for another writer: StoreBusy if one holds the lock."""
        self.con.execute("PRAGMA busy_timeout = 0")
        try:
            self.con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreBusy(
                    f"{self.wal.path or ':memory:'} is being written by another connection"
                ) from exc
            raise
        finally:
            self.con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                try:
                    self.con.execute("COMMIT")
                except sqlite3.Error as error:
                    self._rollback()
                    raise _write_error(self.wal.path, error) from error
                self.wal.writes += 1
            else:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise _write_error(self.wal.path, exc) from exc
        finally:
            if self.wal.path is None:
                self.wal._memory_lock.release()

    def _rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite has rolled back already (a failed COMMIT, a full disk)


def _write_error(path: Path | None, exc: sqlite3.Error) -> StoreError:
    where = path or ":memory:"
    text = str(exc)
    if "full" in text:
        hint = "free some disk space"
    elif "readonly" in text or "read-only" in text:
        hint = "the file or its folder is read-only"
    elif "locked" in text or "busy" in text:
        hint = "another process held the database too long; try again"
    else:
        hint = "run `kagura monitor doctor`"
    return StoreError(f"cannot write to {where}: {text}; {hint}")


class _ReadTxn:
    def __init__(self, wal: Tail, con: sqlite3.Connection):
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
    for values, column in zip(columns, schema, strict=True):
        arrays.append(pa.array(values, type=column.type))
    return pa.Table.from_arrays(arrays, schema=schema)
