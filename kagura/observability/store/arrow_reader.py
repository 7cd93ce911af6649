"""Tail reads straight into Arrow, through ADBC's SQLite driver in child processes.

Building Python objects from SQLite rows was most of compaction's time. ADBC's
SQLite driver reads rows into Arrow columns in C, but it carries its own copy
of SQLite, and two SQLite libraries in one process break each other's POSIX
locks (closing a file in one drops the locks the other holds; a SIGBUS was
seen). So it runs in a child process that loads no other SQLite library (this
module imports only the standard library, pyarrow and the driver when run as
a script, not through the package), and only reads: the parent keeps every write, so compaction's
protocol and its crash safety are unchanged. Requests go as JSON lines on
stdin; each answer comes back as one Arrow IPC stream on stdout, written batch by
batch as the driver reads them (no buffer of the whole table in the child: that
copy cost more CPU than the read), so the parent can work on one table while the
child reads the next.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa

# SQLite literal that gives ADBC's type inference each kind of column (it guesses
# types from the first rows: a column NULL there would come back as int64).
_PROBE = {"text": "''", "json": "''", "real": "0.5", "int": "0"}
BATCH_ROWS = 262_144
# A child that sends nothing for this long is stuck (stopped, frozen, starved): both are
# killed and the caller reads in-process. A batch takes well under a second to send.
STALL_SECONDS = 60.0
_COUNT = struct.Struct("<Q")  # rows of the table just sent, after its stream


def available() -> bool:
    """True when ADBC's SQLite driver can be imported (in a child; not imported here)."""
    import importlib.util

    return importlib.util.find_spec("adbc_driver_sqlite") is not None


def typed_select(sql: str, columns: list[tuple[str, str]]) -> str:
    """`sql` after one probe row of the right types (the reader drops it)."""
    probe = ", ".join(f"{_PROBE[kind]} AS {name}" for name, kind in columns)
    return f"SELECT {probe} UNION ALL SELECT * FROM ({sql})"


Query = tuple[str, pa.Schema, list[tuple[str, str]]]  # (sql, schema, [(column, kind)])


class _Child:
    """One reader process and its three pipes."""

    def __init__(self, db: Path):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        # Run as a script (-I: no user site, no cwd on the path), so that importing the
        # package (whose tail imports sqlite3) never happens in the child.
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        # All three are pipes (never None).
        self.stdin = cast(IO[bytes], self.proc.stdin)
        self.stdout = cast(IO[bytes], self.proc.stdout)
        self.stderr = cast(IO[bytes], self.proc.stderr)
        self.heard = time.monotonic()  # when it last sent bytes (or was asked)
        self.waiting = False  # an answer is being read from it

    def read(self, size: int = -1) -> bytes:
        """Bytes of its answer (the Arrow stream reads through this), noting the progress."""
        data = self.stdout.read(size)
        self.heard = time.monotonic()
        return data

    def ask(self, queries: list[Query]) -> None:
        request = [
            [typed_select(sql, columns), [name for name, _ in columns]]
            for sql, _, columns in queries
        ]
        self.stdin.write((json.dumps(request) + "\n").encode())
        self.stdin.flush()
        self.heard = time.monotonic()

    def answer(self, schema: pa.Schema) -> pa.Table:
        self.waiting = True
        try:
            table = pa.ipc.open_stream(self).read_all()
            trailer = self.read(_COUNT.size)
        finally:
            self.waiting = False
        if len(trailer) != _COUNT.size:
            raise EOFError("the reader process closed its output")
        (rows,) = _COUNT.unpack(trailer)
        if rows != table.num_rows:
            raise EOFError(f"the reader sent {table.num_rows:,} of {rows:,} rows")
        return table.cast(schema)

    def stderr_text(self) -> str:
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the reader process did not answer"
        return self.stderr.read().decode(errors="replace").strip()[-500:]

    @property
    def closed(self) -> bool:  # the file protocol pyarrow's stream reader asks for
        return self.stdout.closed

    def kill(self) -> None:
        """End it now: a read blocked on it then sees the end of its output."""
        try:
            self.proc.kill()
        except OSError:
            pass

    def close(self) -> None:
        # Its output closed first: a child still writing an answer nobody will read
        # (after another child failed) ends on the broken pipe instead of waiting.
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


class ArrowReader:
    """Child processes that run SELECTs and return Arrow tables.

    The queries given to one child run in one read transaction (one snapshot);
    with `processes=2`, iter_tables(..., apart=k) gives the queries from k on to
    the second child, which reads them at the same time in its own snapshot.
    """

    def __init__(self, db: Path, processes: int = 1):
        self.failed = False  # once it has failed, the caller reads in-process
        self.children: list[_Child] = []
        try:
            for _ in range(processes):
                self.children.append(_Child(db))
        except BaseException:
            self.close()
            raise
        self.proc = self.children[0].proc

    def read_tables(self, queries: list[Query]) -> list[pa.Table]:
        """Each (sql, schema, [(column, kind)]) as an Arrow table of `schema`, all from one snapshot."""
        return list(self.iter_tables(queries))

    def iter_tables(self, queries: list[Query], apart: int | None = None) -> Iterator[pa.Table]:
        """read_tables, one table at a time: the children read the next while the caller works.

        Queries from `apart` on go to the second child, when there is one (both
        children start at once); the others share one snapshot. The caller takes
        every table.
        """
        split = len(queries) if apart is None or len(self.children) < 2 else apart
        asked = [(self.children[0], queries[:split]), (self.children[-1], queries[split:])]
        for child, part in asked:
            try:
                if part:
                    child.ask(part)
            except OSError as exc:
                self.failed = True
                raise ReaderFailed(f"{exc}; {child.stderr_text()}") from exc
        left = len(queries)
        (first, mine), (second, theirs) = asked
        # The second child's answers are taken in a thread while the first's are handed
        # out: a child whose answer is not taken stops reading once its pipe is full. A
        # daemon thread: a stuck child must never keep the process from exiting.
        later = _Later(lambda: self._answers(second, theirs)) if theirs else None
        watchdog = _Watchdog(self.children)
        try:
            for table in self._answers(first, mine, one_by_one=True):
                left -= 1
                yield table
            if later is not None:
                for table in later.result():
                    left -= 1
                    yield table
        finally:
            watchdog.stop()
            if left:
                self.failed = True  # answers left unread: the children are out of step
                for child in self.children:
                    child.kill()  # stop them now; the thread taking answers then ends too

    def _answers(self, child: _Child, part: list[Query], one_by_one: bool = False) -> Any:
        """The child's answers to `part`, as a list (or one by one); ReaderFailed if it fails."""

        def each() -> Iterator[pa.Table]:
            for _, schema, _ in part:
                try:
                    table = child.answer(schema)
                except (OSError, EOFError, ValueError, pa.ArrowException) as exc:
                    # The child reports its error on stderr and stops: its stream ends early.
                    self.failed = True
                    raise ReaderFailed(f"{exc}; {child.stderr_text()}") from exc
                yield table

        return each() if one_by_one else list(each())

    def close(self) -> None:
        """Ask the children to stop, then make sure they have."""
        for child in self.children:
            child.close()


class _Later(threading.Thread):
    """`fn()` in a daemon thread; result() waits for it and returns it or raises its error."""

    def __init__(self, fn: Callable[[], Any]):
        super().__init__(name="kagura-tail-reader", daemon=True)
        self._fn = fn
        self._value: Any = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> Any:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Watchdog(threading.Thread):
    """Kills every child once one that is being read from has sent nothing for STALL_SECONDS."""

    def __init__(self, children: list[_Child]):
        super().__init__(name="kagura-tail-reader-watchdog", daemon=True)
        self._children = children
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        tick = min(1.0, STALL_SECONDS / 4)
        while not self._done.wait(tick):
            now = time.monotonic()
            if any(c.waiting and now - c.heard > STALL_SECONDS for c in self._children):
                for child in self._children:
                    child.kill()
                return

    def stop(self) -> None:
        self._done.set()


class ReaderFailed(Exception):
    """The reader process could not answer (its stderr, when it has one, is the message)."""


def _serve(db: str) -> int:
    """The child: answer requests from stdin until it closes."""
    from urllib.parse import quote

    # The driver manager's low-level API: its DB-API module would import polars,
    # pandas and pyarrow.dataset, doubling the child's start (0.3 -> 0.15 CPU s).
    import adbc_driver_manager
    import adbc_driver_sqlite

    if "_sqlite3" in sys.modules:  # the very thing this process exists to avoid
        print("the Arrow reader must not load Python's sqlite3", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    # Read-only: this process never writes the database.
    database = adbc_driver_sqlite.connect(f"file:{quote(os.path.abspath(db))}?mode=ro")
    con = adbc_driver_manager.AdbcConnection(database)
    try:
        for line in sys.stdin.buffer:
            request = json.loads(line)
            statement = adbc_driver_manager.AdbcStatement(con)
            # Batches of 256k rows rather than the driver's 1,024: a sealed generation
            # comes back in a few chunks, cheaper to send and to compute on.
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
            try:
                # One snapshot for every query of the request.
                statement.set_sql_query("BEGIN")
                statement.execute_update()
                for sql, _names in request:
                    statement.set_sql_query(sql)
                    handle, _ = statement.execute_query()
                    batches = pa.RecordBatchReader._import_from_c(handle.address)
                    writer = pa.ipc.new_stream(out, batches.schema)
                    rows, first = 0, True
                    for batch in batches:
                        if first:  # the probe row (typed_select)
                            batch, first = batch.slice(1), False
                        writer.write_batch(batch)
                        rows += batch.num_rows
                    # Closed (end-of-stream mark) only once complete, then the row count: a
                    # stream cut short by an error never passes for a whole table.
                    writer.close()
                    out.write(_COUNT.pack(rows))
                    out.flush()
                statement.set_sql_query("COMMIT")
                statement.execute_update()
            except Exception as exc:  # reported to the parent, which reads in-process instead
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            finally:
                statement.close()
    finally:
        out.flush()
    # No teardown: freeing the tables sent and the interpreter took a loaded machine
    # 0.4 s of the parent's wait for the child. This process only read; the OS
    # releases its connection's file and locks.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1]))
