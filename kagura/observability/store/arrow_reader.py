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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa

# SQLite literal that gives ADBC's type inference each kind of column (it guesses
# types from the first rows: a column NULL there would come back as int64).
_PROBE = {"text": "''", "json": "''", "real": "0.5", "int": "0"}
BATCH_ROWS = 262_144
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

    def ask(self, queries: list[Query]) -> None:
        request = [
            [typed_select(sql, columns), [name for name, _ in columns]]
            for sql, _, columns in queries
        ]
        self.stdin.write((json.dumps(request) + "\n").encode())
        self.stdin.flush()

    def answer(self, schema: pa.Schema) -> pa.Table:
        table = pa.ipc.open_stream(self.stdout).read_all()
        trailer = self.stdout.read(_COUNT.size)
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
        # out: a child whose answer is not taken stops reading once its pipe is full.
        pool = ThreadPoolExecutor(max_workers=1) if theirs else None
        later = pool.submit(self._answers, second, theirs) if pool is not None else None
        try:
            for table in self._answers(first, mine, one_by_one=True):
                left -= 1
                yield table
            for table in later.result() if later is not None else []:
                left -= 1
                yield table
        finally:
            if left:
                self.failed = True  # answers left unread: the children are out of step
            if pool is not None:
                pool.shutdown(wait=True)

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
