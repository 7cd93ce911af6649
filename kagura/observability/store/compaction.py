"""Moving settled rows from the SQLite tail into the Parquet lake, crash-safely.

A segment is a pair of Parquet files (executions, events) of one date, sorted
by `started_at`, and its rollup (rollups.py: per-hour counts, sums and
histograms of the same runs). Protocol: write the three under temporary names,
fsync, rename; then one SQLite transaction deletes the moved rows and lists the
segment, rollup included, in the manifest. A file that is not listed is never read; the next compaction,
which holds the lake's lock, removes it. Merges and retention rewrite segments
by the same protocol; replaced files are deleted after a grace period so that
readers holding an older snapshot can finish.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kagura.config import ensure_private_dir
from kagura.observability.errors import StoreError
from kagura.observability.store import arrow_reader
from kagura.observability.store.rollups import LEVELS_FILE, build_rollup
from kagura.observability.store.rows import (
    EVENT_COLUMNS,
    EVENT_NAMES,
    EXECUTION_COLUMNS,
    EXECUTION_NAMES,
    HOST,
    SETTLED,
)
from kagura.observability.store.shared_lake import SharedLake, is_shared, listed_shared
from kagura.observability.store.tail import (
    EVENTS_SCHEMA,
    EXECUTIONS_SCHEMA,
    Segment,
    Tail,
    bump_generation,
    clear_rows,
    delete_runs,
    live_generation,
    sealed_holds_rows,
)

_GENERATION_SCHEMA = pa.schema([("value", pa.int64())])

BATCH_ROWS = 250_000  # executions moved per transaction
MERGE_BELOW = 500_000  # segments smaller than this (executions) get merged ...
MERGE_WHEN = 4  # ... once a date has this many of them
MERGE_MAX = 2_000_000  # executions in one merged segment at most
# From this many runs in the tail on, it is read into Arrow by ADBC in a child
# process (store/arrow_reader.py): its start (about 0.3 s) pays off past this.
ARROW_READER_FROM = 50_000
# Reader processes: one reads the runs, the other the events, at the same time.
READER_PROCESSES = 2
RETIRED_GRACE = 60.0  # seconds a replaced file stays for readers of an older snapshot
ABANDON_AFTER = 7 * 86400.0  # a run from another host still "running" after this is abandoned
ROW_GROUP = 65_536
# Runs in row groups of a quarter of that: a query for the newest runs (or the edge hours of
# a planned one) reads the row groups its time range touches, about half an hour of a
# 100M-run lake's busiest day, for full scans at most 4% slower (docs/benchmarks.md).
EXECUTIONS_ROW_GROUP = 16_384
# zstd level 1 with floats written byte-stream-split (each byte of a float in its own
# stream, so the slowly changing high bytes of times and costs compress apart from the
# noisy low ones) and dictionaries for repetitive text: smaller files than level 9
# without the split, for a fifth of the CPU (docs/benchmarks.md, lake encodings).
ZSTD_LEVEL = 1
DICTIONARY_COLUMNS = [
    "agent_name",
    "status",
    "host",
    "model",
    "type",
    "name",
    "error_type",
    "parent_id",
    "error",
    "kwargs",
    "tags",
    "data",
]


class LakeBusy(Exception):
    """Another process holds the lake's lock."""


@contextmanager
def lake_lock(lake: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the lake's exclusive lock (one compaction, merge or prune at a time)."""
    ensure_private_dir(lake)
    fd = os.open(lake / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LakeBusy(str(lake)) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


READERS = ".readers"  # lake file every reading process holds a shared lock on
PENDING = ".prune-pending"  # lake file listing what a prune could not wipe yet (JSON)


class ReaderHold:
    """One store's shared lock on `<lake>/.readers`, held from its first read until it closes.

    While any process holds it, files a prune retired stay (a reader may hold
    a snapshot that lists them); the last one to let go removes them.
    """

    def __init__(self, lake: Path):
        self.lake = lake
        self.fd: int | None = None
        self._mutex = threading.Lock()

    def hold(self) -> None:
        """Take the shared lock (once); a lake this process cannot write is read without it."""
        with self._mutex:
            if self.fd is not None:
                return
            try:
                fd = os.open(self.lake / READERS, os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            except OSError:
                os.close(fd)
                return
            self.fd = fd

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """True while no other holder exists (this one, if held, made exclusive for the while)."""
        own = self.fd
        try:
            fd = (
                own
                if own is not None
                else os.open(self.lake / READERS, os.O_CREAT | os.O_RDWR, 0o600)
            )
        except OSError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
            except OSError:
                got = False
            yield got
        finally:
            if own is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)  # a failed conversion drops the lock: take it again
            else:
                os.close(fd)

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases it)."""
        with self._mutex:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


def reader_pids(lake: Path) -> list[int] | None:
    """The processes holding `<lake>/.readers` (from /proc/locks), or None where that can't be known."""
    try:
        inode = (lake / READERS).stat().st_ino
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    pids = set()
    for line in text.splitlines():
        parts = line.split()
        # e.g. "1: FLOCK  ADVISORY  READ  4242 08:01:1311 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            try:
                pids.add(int(parts[4]))
            except ValueError:
                continue
    return sorted(pids)


def read_pending(lake: Path) -> dict[str, Any] | None:
    """What a prune left to wipe: {"files": [...], "vacuum": bool, "since": time}, or None."""
    try:
        value = json.loads((lake / PENDING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_pending(lake: Path, pending: dict[str, Any] | None) -> None:
    path = lake / PENDING
    if not pending or (not pending.get("files") and not pending.get("vacuum")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(pending, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def vacuum(db: Path, con=None) -> bool:
    """Rewrite the SQLite file without its free pages and empty the WAL; False while a reader blocks it.

    Deleted rows stay in free pages and in WAL frames until both are rewritten.
    """
    import sqlite3

    own = con is None
    if own:
        con = sqlite3.connect(db, isolation_level=None, timeout=5.0)
        con.execute("PRAGMA busy_timeout = 5000")
    try:
        con.execute("VACUUM")
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0
    except sqlite3.OperationalError:
        return False
    finally:
        if own:
            con.close()


def wipe_pending(
    lake: Path, db: Path, readers: ReaderHold | None, con=None
) -> dict[str, Any] | None:
    """Remove what a prune left when no other process reads the store; what is still pending (or None)."""
    pending = read_pending(lake)
    if pending is None:
        return None
    try:
        with lake_lock(lake, 0.0):
            pending = read_pending(lake)
            if pending is None:
                return None
            # SQLite readers never see free pages: the database is wiped at once.
            if pending.get("vacuum") and vacuum(db, con):
                pending["vacuum"] = False
            holder = readers if readers is not None else ReaderHold(lake)
            with holder.alone() as alone:
                if alone:
                    for rel in pending.get("files", []):
                        try:
                            (lake / rel).unlink()
                        except FileNotFoundError:
                            pass
                    pending["files"] = []
            _write_pending(lake, pending)
    except (LakeBusy, OSError):
        return read_pending(lake)
    return read_pending(lake)


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- files --------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parquet(table: pa.Table, final: Path) -> int:
    """Write `table` to `final` via a temporary name, fsynced; return its size in bytes."""
    tmp = final.with_name(final.name + ".tmp")
    try:
        return _write_parquet_file(table, final, tmp)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StoreError(
            f"cannot write lake file {final}: {exc.strerror or exc}; free some disk space or check the folder"
        ) from exc


def _write_parquet_file(table: pa.Table, final: Path, tmp: Path) -> int:
    ensure_private_dir(final.parent)
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as f:
        _write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return final.stat().st_size


def _write_table(table: pa.Table, stream: Any) -> None:
    """One lake file's bytes: zstd, row groups of ROW_GROUP (EXECUTIONS_ROW_GROUP for runs),
    dictionaries for repeated names."""
    runs = "trace_id" in table.schema.names  # an executions table
    pq.write_table(
        table,
        stream,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=EXECUTIONS_ROW_GROUP if runs else ROW_GROUP,
        use_dictionary=DICTIONARY_COLUMNS,
        use_byte_stream_split=[f.name for f in table.schema if pa.types.is_floating(f.type)],
        write_statistics=True,
    )


def _day_of(started_at: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.cast(pc.floor(pc.divide(started_at, 86400.0)), pa.int64())


def _sorted_by_start(executions: pa.Table) -> tuple[pa.Table, pa.Array]:
    """The runs sorted by (started_at, id), and each one's UTC day (so, non-decreasing).

    A tail written in order of start is sorted already: then it is not copied.
    """
    if executions.num_rows > 1:
        order = pc.cast(
            pc.sort_indices(
                executions, sort_keys=[("started_at", "ascending"), ("id", "ascending")]
            ),
            pa.int64(),
        )
        steps = pc.subtract(order.slice(1), order.slice(0, len(order) - 1))
        if not pc.all(pc.equal(steps, 1)).as_py():
            executions = executions.take(order)
    started = executions.column("started_at")
    return executions, _day_of(started.combine_chunks() if started.num_chunks else started)


def _non_decreasing(values: Any) -> bool:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(values) < 2:
        return True
    return bool(pc.all(pc.less_equal(values.slice(0, len(values) - 1), values.slice(1))).as_py())


def _day_runs(days: Any) -> list[tuple[int, int, int]]:
    """(day, first index, length) of each run of equal values in non-decreasing `days`."""
    counted = pc.value_counts(days)
    out, start = [], 0
    # Ascending values are the order of the runs, `days` being non-decreasing.
    for day, length in sorted(
        zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    ):
        out.append((day, start, length))
        start += length
    return out


def _date_str(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def _segment_id() -> str:
    return f"seg_{int(time.time() * 1000):012x}_{secrets.token_hex(6)}"


KINDS = ("executions", "events", "rollups")  # the lake's folders, one file of a segment in each


def rollup_rel(executions_rel: str) -> str:
    """The rollup file's path (relative to the lake) of the segment whose executions file is given.

    `executions/date=D/F` has `rollups/date=D/F`; in a shared lake
    `host=H/executions/date=D/F` has `host=H/rollups/date=D/F`.
    """
    parts = executions_rel.split("/")
    parts[1 if is_shared(executions_rel) else 0] = "rollups"
    return "/".join(parts)


def write_rollup(
    lake: Path,
    executions_rel: str,
    executions: pa.Table,
    events: pa.Table,
    shared: SharedLake | None = None,
) -> tuple[str, int]:
    """Write the rollup of a segment's tables beside it, complete or not at all: (path, bytes).

    In the store's own lake: temporary name, fsync, rename; a segment of the
    shared lake gets its rollup there, beside it (one object).
    """
    rel = rollup_rel(executions_rel)
    table = build_rollup(executions, events)
    if is_shared(executions_rel):
        if shared is None:
            raise StoreError(
                f"{executions_rel} lives in a shared lake; open the store with its lake (KAGURA_LAKE)"
            )
        return rel, shared.write_file(rel, lambda f: _write_table(table, f))
    return rel, _write_parquet(table, lake / rel)


def run_all(tasks: list[Callable[[], Any]], parallel: bool = True) -> list[Any]:
    """Each task's result, in order; with `parallel`, the tasks run at once in threads.

    pyarrow releases the GIL while it encodes, compresses and writes, so the
    files of a segment (and its rollup) are written on both cores. Every task
    has finished (written its file or failed) before this returns; the first
    error is raised then.
    """
    if not parallel or len(tasks) < 2:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=len(tasks) - 1) as pool:
        futures = [pool.submit(task) for task in tasks[1:]]
        outcomes: list[tuple[bool, Any]] = []
        try:
            outcomes.append((True, tasks[0]()))
        except BaseException as exc:
            outcomes.append((False, exc))
        for future in futures:
            try:
                outcomes.append((True, future.result()))
            except BaseException as exc:
                outcomes.append((False, exc))
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]


def write_segment(
    lake: Path,
    date: str,
    executions: pa.Table,
    events: pa.Table,
    sort_events: bool = True,
    presorted: bool = False,
    shared: SharedLake | None = None,
    parallel: bool = False,
) -> Segment:
    """Write one segment's files (executions sorted by started_at, events, rollup); not yet listed.

    Events are grouped by execution (ordered by execution id, then seq), so the
    repeated ids compress to almost nothing; `sort_events=False` keeps an
    order that is grouped already. `presorted=True`: executions come sorted by
    (started_at, id) and events grouped by execution, in any order. With a
    `shared` lake the files go under this host's prefix there (`host=<id>/...`),
    else into the store's own `lake`. `parallel=True` writes the store's own
    three files at once (run_all); a caller that keeps the other core busy
    itself leaves it False.
    """
    seg_id = _segment_id()
    if not presorted:
        executions = executions.sort_by([("started_at", "ascending"), ("id", "ascending")])
    executions = _root_traces_as_null(executions)
    if sort_events and not presorted and events.num_rows:
        events = events.sort_by([("execution_id", "ascending"), ("seq", "ascending")])
    stem = f"{seg_id}_{HOST.replace('/', '_')}-{os.getpid()}.parquet"
    exec_rel = f"executions/date={date}/{stem}"
    event_rel = f"events/date={date}/{stem}"
    if shared is not None:
        # The same three files under this host's prefix; each object complete or absent.
        exec_rel, event_rel = f"{shared.prefix}/{exec_rel}", f"{shared.prefix}/{event_rel}"
        size = shared.write_file(exec_rel, lambda f: _write_table(executions, f))
        try:
            size += shared.write_file(event_rel, lambda f: _write_table(events, f))
            rollup, rollup_bytes = write_rollup(lake, exec_rel, executions, events, shared)
        except BaseException:
            shared.remove([exec_rel, event_rel])
            raise
    else:
        sizes = run_all(
            [
                lambda: _write_parquet(events, lake / event_rel),
                lambda: write_rollup(lake, exec_rel, executions, events),
                lambda: _write_parquet(executions, lake / exec_rel),
            ],
            parallel,
        )
        size = sizes[0] + sizes[2]
        rollup, rollup_bytes = sizes[1]
    size += rollup_bytes
    started = executions.column("started_at")
    return Segment(
        id=seg_id,
        date=date,
        executions_path=exec_rel,
        events_path=event_rel,
        min_started_at=pc.min(started).as_py(),
        max_started_at=pc.max(started).as_py(),
        executions=executions.num_rows,
        events=events.num_rows,
        bytes=size,
        created_at=time.time(),
        rollup_path=rollup,
    )


def _empty_tables(con, tables: list[str]) -> None:
    """Inside a write: DELETE every row of `tables`, their freed pages left as they are.

    A SQLite built with SECURE_DELETE (Debian's, so Python's here) zeroes every
    freed page, which for a sealed generation of 250k runs is 51,000 pages, 200 MB
    written to the WAL and again to the file at the next checkpoint (0.7 s of a
    compaction's commit). The rows emptied here are moved, not deleted: they are in
    the lake now. Deleting runs (retention) wipes free pages with VACUUM.
    """
    (before,) = con.execute("PRAGMA secure_delete").fetchone()
    con.execute("PRAGMA secure_delete = FAST")  # zero only what is written anyway
    try:
        for table in tables:
            con.execute(f"DELETE FROM {table}")
    finally:
        con.execute(f"PRAGMA secure_delete = {'FAST' if before == 2 else int(before)}")


def _insert_segment(con, seg: Segment) -> None:
    con.execute(
        "INSERT INTO segments (id, date, executions_path, events_path, min_started_at, max_started_at, executions, events, bytes, created_at, rollup_path) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seg.id,
            seg.date,
            seg.executions_path,
            seg.events_path,
            seg.min_started_at,
            seg.max_started_at,
            seg.executions,
            seg.events,
            seg.bytes,
            seg.created_at,
            seg.rollup_path,
        ),
    )


def _retire(con, seg: Segment, now: float) -> None:
    con.execute("DELETE FROM segments WHERE id = ?", (seg.id,))
    con.executemany(
        "INSERT OR REPLACE INTO retired_files (path, retired_at) VALUES (?, ?)",
        [(rel, now) for rel in segment_files(seg)],
    )


def segment_files(seg: Segment) -> list[str]:
    """The lake files of a segment (relative paths): executions, events and its rollup if any."""
    return [seg.executions_path, seg.events_path] + ([seg.rollup_path] if seg.rollup_path else [])


def _drop_levels(lake: Path) -> None:
    """Delete the merged rollups a reader saved (rollups.LEVELS_FILE) once runs are deleted:
    they summed the deleted runs too. The next planned query merges them anew."""
    try:
        (lake / LEVELS_FILE).unlink(missing_ok=True)
    except OSError:
        pass  # a cache; the version it was saved for no longer matches the manifest


def _remove_files(lake: Path, segs: list[Segment], shared: SharedLake | None = None) -> None:
    for seg in segs:
        for rel in segment_files(seg):
            if is_shared(rel):
                if shared is not None:
                    shared.remove([rel])
                continue
            try:
                (lake / rel).unlink()
            except FileNotFoundError:
                pass


def _root_traces_as_null(executions: pa.Table) -> pa.Table:
    """In the lake a root run's trace_id is NULL (it is its own id): 12 bytes a run saved."""
    trace = executions.column("trace_id")
    own = pc.fill_null(pc.equal(trace, executions.column("id")), False)
    nulled = pc.if_else(own, pa.scalar(None, pa.string()), trace)
    return executions.set_column(executions.schema.get_field_index("trace_id"), "trace_id", nulled)


def root_traces_restored(executions: pa.Table) -> pa.Table:
    """Lake rows with a NULL trace_id given back their own id (what readers see)."""
    restored = pc.coalesce(executions.column("trace_id"), executions.column("id"))
    return executions.set_column(
        executions.schema.get_field_index("trace_id"), "trace_id", restored
    )


def read_segment(
    lake: Path, seg: Segment, shared: SharedLake | None = None
) -> tuple[pa.Table, pa.Table]:
    """The two tables of one listed segment (trace ids as readers see them)."""
    if is_shared(seg.executions_path):
        if shared is None:
            raise StoreError(
                f"segment {seg.id} lives in a shared lake; open the store with its lake (KAGURA_LAKE)"
            )
        executions = shared.read_parquet(seg.executions_path, schema=EXECUTIONS_SCHEMA)
        events = shared.read_parquet(seg.events_path, schema=EVENTS_SCHEMA)
        return root_traces_restored(executions), events
    try:
        executions = root_traces_restored(
            pq.read_table(lake / seg.executions_path, schema=EXECUTIONS_SCHEMA)
        )
        events = pq.read_table(lake / seg.events_path, schema=EVENTS_SCHEMA)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(
            f"lake file of segment {seg.id} is unreadable ({exc}); run `kagura monitor doctor`"
        ) from exc
    return executions, events


# --- the lake -----------------------------------------------------------------


def nothing_compacted() -> dict[str, Any]:
    """The report of a compaction that has moved nothing yet: every count 0, 0 seconds."""
    return {
        "executions": 0,
        "events": 0,
        "segments": 0,
        "merged": 0,
        "removed_files": 0,
        "rollups_built": 0,
        "seconds": 0.0,
    }


class Compactor:
    """Compaction, merging, retention and cleanup of one store's lake."""

    def __init__(self, wal: Tail, lake: Path, shared: SharedLake | None = None):
        self.wal = wal
        self.lake = lake
        # New segments go to the shared lake when there is one; the store's own
        # folder keeps the locks and any segments written before.
        self.shared = shared

    def _publish(self, con) -> None:
        """Inside a write: publish the shared lake's manifest as this transaction will leave it.

        It is durable in the lake before the transaction commits (which is what
        deletes moved rows from the tail); a crash in between leaves a manifest
        ahead of the store, which `_reconcile` takes back.
        """
        if self.shared is not None:
            self.shared.publish(listed_shared(con))

    def _reconcile(self) -> None:
        """Make the host's newest manifest list what the store lists (after a crash between the two)."""
        if self.shared is None:
            return
        con = self.wal.con()
        ours = listed_shared(con)
        newest = self.shared.newest(self.shared.host)
        if newest is not None and newest.store not in (None, self.shared.store):
            raise StoreError(
                f"host id {self.shared.host!r} is already used in {self.shared.url} by another store "
                f"({newest.store}); give this one its own KAGURA_HOST_ID"
            )
        listed = sorted(e["id"] for e in newest.segments) if newest is not None else []
        if listed != sorted(e["id"] for e in ours) and (newest is not None or ours):
            self.shared.publish(ours)

    # --- compaction ---

    def compact(
        self,
        wait: float = 0.0,
        batch: int = BATCH_ROWS,
        merge: bool = True,
        arrow_reader: bool | None = None,
    ) -> dict[str, Any]:
        """Move every settled tail row into the lake; return what was done.

        `arrow_reader`: read the tail through ADBC in a child process (True),
        with Python's sqlite3 (False), or the first when it is installed and the
        tail holds at least ARROW_READER_FROM runs (None).
        """
        start = time.perf_counter()
        report = nothing_compacted()
        try:
            with lake_lock(self.lake, wait):
                self._reconcile()
                # Started first: the child's start (Python, pyarrow, the driver) overlaps
                # the cleanup and the seal; it reads nothing before it is asked.
                reader = self._reader(arrow_reader)
                try:
                    report["removed_files"] = self.cleanup()
                    self.settle_abandoned()
                    # A generation sealed by a compaction that died is moved first; then
                    # the live one is sealed and moved. Runs settled meanwhile wait for
                    # the next compaction.
                    fresh = False
                    while not fresh:
                        if not self._sealed_rows():
                            if not self._seal():
                                break
                            fresh = True
                        report.setdefault("reader", "adbc" if reader is not None else "sqlite3")
                        moved, events, segs = self._compact_batch(batch, reader)
                        report["executions"] += moved
                        report["events"] += events
                        report["segments"] += segs
                finally:
                    if reader is not None:
                        reader.close()
                if reader is not None and reader.failed:
                    report["reader"] = "sqlite3"  # the Arrow reader failed: read in-process
                report.setdefault("reader", "sqlite3")
                if merge:
                    report["merged"] = self.merge_small()
                report["rollups_built"] = self.add_missing_rollups()
        except LakeBusy:
            report["skipped"] = "another compaction is running"
        report["seconds"] = round(time.perf_counter() - start, 4)
        return report

    def settle_abandoned(self, now: float | None = None) -> int:
        """Mark runs whose process is gone as abandoned; return how many."""
        now = now or time.time()
        con = self.wal.con()
        running = con.execute(
            "SELECT id, host, pid, started_at FROM executions WHERE status = 'running'"
        ).fetchall()
        gone = [
            (run_id,)
            for run_id, host, pid, started in running
            if (host == HOST and pid is not None and pid != os.getpid() and not pid_alive(pid))
            or (host != HOST and now - started > ABANDON_AFTER)
        ]
        if gone:
            with self.wal.write(con) as c:
                bump_generation(c)
                c.executemany(
                    "UPDATE executions SET status = 'abandoned', error_type = coalesce(error_type, 'Abandoned'), "
                    "error = coalesce(error, 'the process recording this run ended before it finished') "
                    "WHERE id = ? AND status = 'running'",
                    gone,
                )
        return len(gone)

    def _sealed_rows(self) -> bool:
        """True when the sealed generation holds rows (a compaction sealed it and did not finish)."""
        con = self.wal.con()
        with self.wal._read(con):
            return sealed_holds_rows(con, 1 - live_generation(con))

    def _seal(self) -> bool:
        """Seal the live generation: the other (empty) one becomes live and takes the runs not
        yet settled, with their events. False (nothing done) when no run is settled."""
        settled = ", ".join(f"'{s}'" for s in SETTLED)
        with self.wal.write() as con:
            live = live_generation(con)
            new = 1 - live
            if sealed_holds_rows(con, new):
                return True  # sealed already (another process got here first)
            (any_settled,) = con.execute(
                f"SELECT EXISTS (SELECT 1 FROM executions_{live} WHERE status IN ({settled}))"
            ).fetchone()
            if not any_settled:
                return False
            bump_generation(con)
            unsettled = con.execute(
                f"INSERT INTO executions_{new} SELECT * FROM executions_{live} "
                f"WHERE status NOT IN ({settled})"
            ).rowcount
            if unsettled:  # else no second scan of the sealed runs
                carried = f"SELECT id FROM executions_{new}"
                con.execute(
                    f"INSERT INTO events_{new} SELECT * FROM events_{live} WHERE execution_id IN ({carried})"
                )
                con.execute(f"DELETE FROM events_{live} WHERE execution_id IN ({carried})")
                con.execute(f"DELETE FROM executions_{live} WHERE status NOT IN ({settled})")
            for relation in ("executions", "events"):
                # Revs are never reused: the new live table counts on from the highest.
                (top,) = con.execute(
                    "SELECT max(seq) FROM sqlite_sequence WHERE name IN (?, ?)",
                    (f"{relation}_0", f"{relation}_1"),
                ).fetchone()
                if (
                    top is not None
                    and not con.execute(
                        "UPDATE sqlite_sequence SET seq = ? WHERE name = ?",
                        (top, f"{relation}_{new}"),
                    ).rowcount
                ):
                    con.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                        (f"{relation}_{new}", top),
                    )
            con.execute("UPDATE state SET value = ? WHERE key = 'live'", (new,))
        return True

    def _reader(self, wanted: bool | None) -> arrow_reader.ArrowReader | None:
        """The child process that reads the tail into Arrow, when it is wanted and can run."""
        if wanted is False or self.wal.path is None or not arrow_reader.available():
            return None
        if wanted is None:
            # Before the seal: the settled runs of both generations (those still running
            # stay in the tail: two readers started for them would read nothing).
            (count,) = (
                self.wal.con()
                .execute(
                    "SELECT (SELECT count(*) FROM executions_0 WHERE status <> 'running')"
                    " + (SELECT count(*) FROM executions_1 WHERE status <> 'running')"
                )
                .fetchone()
            )
            if count < ARROW_READER_FROM:
                return None
        return arrow_reader.ArrowReader(self.wal.path, processes=READER_PROCESSES)

    def _compact_batch(
        self, batch: int, reader: arrow_reader.ArrowReader | None = None
    ) -> tuple[int, int, int]:
        """Move the sealed generation into the lake: read its tables whole, write the
        segments, then one transaction lists them and empties the tables.

        Runs written again meanwhile leave the sealed tables (tail.append_many), so the
        counts read are checked in that transaction; on a change the generation is read
        again. `batch` is kept for callers; a generation is moved at once.
        """
        for _attempt in range(5):
            done = self._move_sealed(reader)
            if done is not None:
                return done
        raise StoreError("the sealed tail kept changing while it was compacted; try again later")

    def _move_sealed(self, reader: arrow_reader.ArrowReader | None) -> tuple[int, int, int] | None:
        con = self.wal.con()
        with self.wal._read(con):
            sealed = 1 - live_generation(con)
            spans = [
                con.execute(f"SELECT min(rev), max(rev) FROM {relation}_{sealed}").fetchone()
                for relation in ("executions", "events")
            ]
        generation = (
            "SELECT value FROM state WHERE key = 'generation'",
            _GENERATION_SCHEMA,
            [("value", "int")],
        )
        runs = (
            f"SELECT {', '.join(EXECUTION_NAMES)} FROM executions_{sealed}",
            EXECUTIONS_SCHEMA,
            list(EXECUTION_COLUMNS),
        )

        def events(where: str = "") -> tuple[str, pa.Schema, list[tuple[str, str]]]:
            return (
                f"SELECT {', '.join(EVENT_NAMES)} FROM events_{sealed}{where}",
                EVENTS_SCHEMA,
                list(EVENT_COLUMNS),
            )

        if reader is not None and not reader.failed:
            # Two children at once: the generation, the runs and the first events in one,
            # the other events in the other, about as much reading each (a run costs
            # about 1.5 events to read; `rev` is the rowid: a range is a range scan).
            # Separate snapshots are as good as one here: after the seal the sealed
            # tables only lose rows (a run written again leaves them) or change in
            # place, never gain any, so the commit's check that each table still holds
            # as many rows as were read from it means each read is still whole.
            (run_lo, run_hi), (event_lo, event_hi) = spans
            run_count = run_hi - run_lo + 1 if run_lo is not None else 0
            event_count = event_hi - event_lo + 1 if event_lo is not None else 0
            share = event_count // 2 - (3 * run_count) // 4
            if share > 0:
                split = event_lo + share - 1
                queries = [
                    generation,
                    runs,
                    events(f" WHERE rev <= {split}"),
                    events(f" WHERE rev > {split}"),
                ]
                apart = 3
            else:
                queries, apart = [generation, runs, events()], 2
            try:
                return self._move_tables(sealed, reader.iter_tables(queries, apart=apart))
            except arrow_reader.ReaderFailed as exc:
                logging.getLogger("kagura.telemetry").warning(
                    "compaction reads the tail with sqlite3: the Arrow reader failed (%s)", exc
                )
        # sqlite3: one read transaction, both tables whole and the generation.
        queries = [generation, runs, events()]
        tables = self.wal.read_tables([(sql, schema) for sql, schema, _ in queries])
        return self._move_tables(sealed, iter(tables))

    def _move_tables(self, sealed: int, tables: Iterator[pa.Table]) -> tuple[int, int, int] | None:
        """Move what `tables` yields (generation, runs, then the sealed events in one or
        more parts): the runs are sorted while the events are still being read."""
        state = next(tables)
        generation = state.column("value")[0].as_py() if state.num_rows else None
        executions = next(tables)
        exec_count = executions.num_rows
        # Rows that must stay in the tail: runs not settled (a sealed row changed in place)
        # and events without a settled run here (their run is live, or not written yet).
        # Usually every row moves: then nothing is filtered (each filter copies its table).
        settled = pc.is_in(executions.column("status"), value_set=pa.array(SETTLED))
        kept_ids: list[str] = []
        if (pc.sum(settled).as_py() or 0) < executions.num_rows:
            kept_ids = executions.filter(pc.invert(settled)).column("id").to_pylist()
            executions = executions.filter(settled)
        executions, days = _sorted_by_start(executions)
        events = pa.concat_tables(list(tables))  # the parts in order of rev, not copied
        read_counts = (exec_count, events.num_rows)
        # Each event's run by position among the sorted runs (a hash lookup, no join).
        position = pc.index_in(events.column("execution_id"), value_set=executions.column("id"))
        kept_event_ids: list[str] = []
        if position.null_count:
            moved_event = pc.is_valid(position)
            kept_event_ids = pc.unique(
                events.filter(pc.invert(moved_event)).column("execution_id")
            ).to_pylist()
            events = events.filter(moved_event)
            position = pc.drop_null(position)
        carry = sorted(set(kept_ids) | set(kept_event_ids))
        segments = (
            self._write_by_date(executions, days, events, position) if executions.num_rows else []
        )
        try:
            with self.wal.write() as con:
                now_counts = tuple(
                    con.execute(f"SELECT count(*) FROM {relation}_{sealed}").fetchone()[0]
                    for relation in ("executions", "events")
                )
                (now_generation,) = con.execute(
                    "SELECT value FROM state WHERE key = 'generation'"
                ).fetchone()
                if (
                    now_counts != read_counts
                    or now_generation != generation
                    or live_generation(con) == sealed
                ):
                    # Rows changed under us (written again or deleted): roll back, read again.
                    raise _Changed()
                bump_generation(con)
                if carry:
                    self._carry_forward(con, sealed, carry)
                # Whole tables emptied: SQLite frees their pages instead of deleting rows.
                _empty_tables(con, [f"events_{sealed}", f"executions_{sealed}"])
                for seg in segments:
                    _insert_segment(con, seg)
                if segments:
                    self._publish(con)
        except _Changed:
            _remove_files(self.lake, segments, self.shared)
            return None
        except BaseException:
            # Shared files stay: a manifest may list them already. Unlisted, they
            # go with a later cleanup, once no reader can hold that manifest.
            _remove_files(self.lake, segments)
            raise
        return executions.num_rows, events.num_rows, len(segments)

    @staticmethod
    def _carry_forward(con, sealed: int, ids: list[str]) -> None:
        """Inside the commit: rows of the sealed generation that stay in the tail go to the live one."""
        live = 1 - sealed
        chosen = "SELECT value FROM json_each(?)"
        values = (json.dumps(ids),)
        con.execute(
            f"INSERT OR IGNORE INTO executions_{live} SELECT * FROM executions_{sealed} "
            f"WHERE id IN ({chosen})",
            values,
        )
        con.execute(
            f"INSERT OR IGNORE INTO events_{live} SELECT * FROM events_{sealed} "
            f"WHERE execution_id IN ({chosen})",
            values,
        )

    def _write_by_date(
        self, executions: pa.Table, days: pa.Array, events: pa.Table, position: Any
    ) -> list[Segment]:
        """One segment per UTC date of runs sorted by start (`days`: each run's day), with
        each event's run at `position`. A date's runs and events are slices, not copies."""
        parts = _day_runs(days)
        if len(parts) == 1:
            event_parts = [(parts[0][0], 0, events.num_rows)]
        else:
            event_days = pc.take(days, position)
            if not _non_decreasing(event_days):
                # Grouped by day, each run's events still together (the sort is stable).
                order = pc.sort_indices(event_days)
                events, event_days = events.take(order), pc.take(event_days, order)
            event_parts = _day_runs(event_days)
        event_at = {day: (start, length) for day, start, length in event_parts}
        segments = []
        try:
            for day, start, length in parts:
                ev_start, ev_length = event_at.get(day, (0, 0))
                segments.append(
                    write_segment(
                        self.lake,
                        _date_str(day),
                        executions.slice(start, length),
                        events.slice(ev_start, ev_length),
                        presorted=True,
                        shared=self.shared,
                        parallel=True,
                    )
                )
        except BaseException:
            _remove_files(self.lake, segments, self.shared)
            raise
        return segments

    # --- rollups of segments written without one ---

    def add_missing_rollups(self) -> int:
        """Build the rollup of every listed segment that has none (a lake from before rollups)."""
        missing = [
            seg
            for seg in self.segments()
            if not seg.rollup_path
            and (self.shared is not None or not is_shared(seg.executions_path))
        ]
        built = 0
        for seg in missing:
            try:
                self.add_rollup(seg)
            except StoreError as exc:
                if not is_shared(seg.executions_path):
                    raise
                # Not a loss: the planner scans a shared segment without a rollup; the next
                # compaction tries again.
                logging.getLogger("kagura.telemetry").warning(
                    "no rollup for shared segment %s yet: %s", seg.id, exc
                )
                continue
            built += 1
        return built

    def add_rollup(self, seg: Segment) -> str:
        """(Re)build one listed segment's rollup from its files and list it; return its path."""
        executions, events = read_segment(self.lake, seg, self.shared)
        # Written (temporary name, fsync, rename) before it is listed, as every lake file is;
        # in the shared lake, before the manifest that lists it.
        rel, size = write_rollup(self.lake, seg.executions_path, executions, events, self.shared)
        with self.wal.write() as con:
            con.execute(
                "UPDATE segments SET rollup_path = ?, bytes = bytes + ? WHERE id = ?",
                (rel, 0 if seg.rollup_path else size, seg.id),
            )
            if is_shared(seg.executions_path):
                self._publish(con)
        return rel

    # --- merging ---

    def merge_small(self) -> int:
        """Merge small segments of one date into one; return how many were merged away."""
        merged = 0
        by_date: dict[str, list[Segment]] = {}
        for seg in self.segments():
            if seg.executions < MERGE_BELOW:
                by_date.setdefault(seg.date, []).append(seg)
        for _date, segs in sorted(by_date.items()):
            if len(segs) < MERGE_WHEN:
                continue
            group: list[Segment] = []
            total = 0
            for seg in sorted(segs, key=lambda s: s.min_started_at):
                if total + seg.executions > MERGE_MAX and len(group) >= 2:
                    merged += self._merge(group)
                    group, total = [], 0
                group.append(seg)
                total += seg.executions
            if len(group) >= 2:
                merged += self._merge(group)
        return merged

    def _merge(self, group: list[Segment]) -> int:
        tables = [read_segment(self.lake, seg, self.shared) for seg in group]
        executions = pa.concat_tables([t[0] for t in tables])
        events = pa.concat_tables([t[1] for t in tables])
        new = write_segment(
            self.lake, group[0].date, executions, events, shared=self.shared, parallel=True
        )
        now = time.time()
        try:
            with self.wal.write() as con:
                listed = {r[0] for r in con.execute("SELECT id FROM segments")}
                if not all(seg.id in listed for seg in group):
                    raise _Changed()
                for seg in group:
                    _retire(con, seg, now)
                _insert_segment(con, new)
                self._publish(con)
        except _Changed:
            _remove_files(self.lake, [new], self.shared)
            return 0
        except BaseException:
            _remove_files(self.lake, [new])  # shared files: see _compact_batch
            raise
        return len(group)

    # --- retention ---

    def prune(
        self,
        older_than: float,
        readers: ReaderHold | None,
        wait: float = 30.0,
        scored: list[str] | None = None,
    ) -> dict[str, Any]:
        """Delete every run that started before `older_than` and wipe its bytes from disk.

        `scored`: the ids of those runs that have scores; their scores are deleted
        with them (and wiped with the SQLite file's free pages).

        Rewritten segments' old files and the SQLite file's free pages (VACUUM,
        then the WAL emptied) go now when no other process reads the store;
        otherwise they are listed in `<lake>/.prune-pending` and go when the
        last reader lets go. Returns {"deleted": runs, "pending": what waits or None}.
        """
        with lake_lock(self.lake, wait):
            self.cleanup()
            before = self.segments()
            deleted = self._delete_before(older_than)
            if scored:
                with self.wal.write() as con:
                    con.executemany(
                        "DELETE FROM scores WHERE execution_id = ?", [(i,) for i in scored]
                    )
            if deleted:
                listed = {s.id for s in self.segments()}
                retired = [
                    rel for seg in before if seg.id not in listed for rel in segment_files(seg)
                ]
                left = read_pending(self.lake) or {"files": [], "since": time.time()}
                left["files"] = sorted(set(left.get("files", [])) | set(retired))
                left["vacuum"] = True
                _write_pending(self.lake, left)
                _drop_levels(self.lake)
        assert self.wal.path is not None  # a compactor is made for a store on disk only
        pending = wipe_pending(self.lake, self.wal.path, readers, self.wal.con())
        return {"deleted": deleted, "pending": pending}

    def plan(self, older_than: float) -> dict[str, Any]:
        """What prune(older_than) would delete: runs, events, UTC days, lake bytes, first and last start."""
        runs = events = 0
        lake_bytes = 0.0
        days: set[str] = set()
        starts: list[float] = []
        for seg in self.segments():
            if seg.min_started_at >= older_than:
                continue
            if seg.max_started_at < older_than:
                runs += seg.executions
                events += seg.events
                lake_bytes += seg.bytes
                days.add(seg.date)
                starts += [seg.min_started_at, seg.max_started_at]
                continue
            executions = self._read_columns(seg.executions_path, ["id", "started_at"])
            doomed = executions.filter(pc.less(executions.column("started_at"), older_than))
            if doomed.num_rows == 0:
                continue
            event_ids = self._read_columns(seg.events_path, ["execution_id"])
            events += (
                pc.sum(
                    pc.is_in(event_ids.column("execution_id"), value_set=doomed.column("id"))
                ).as_py()
                or 0
            )
            runs += doomed.num_rows
            lake_bytes += seg.bytes * doomed.num_rows / max(seg.executions, 1)
            days.add(seg.date)
            starts += [
                pc.min(doomed.column("started_at")).as_py(),
                pc.max(doomed.column("started_at")).as_py(),
            ]
        con = self.wal.con()
        tail_runs, first, last = con.execute(
            "SELECT count(*), min(started_at), max(started_at) FROM executions WHERE started_at < ?",
            (older_than,),
        ).fetchone()
        runs += tail_runs
        events += con.execute(
            "SELECT count(*) FROM events WHERE execution_id IN (SELECT id FROM executions WHERE started_at < ?)",
            (older_than,),
        ).fetchone()[0]
        days.update(
            _date_str(int(r[0]))
            for r in con.execute(
                "SELECT DISTINCT CAST(started_at / 86400 AS INTEGER) FROM executions WHERE started_at < ? AND started_at >= 0",
                (older_than,),
            )
        )
        starts += [t for t in (first, last) if t is not None]
        return {
            "cutoff": older_than,
            "runs": runs,
            "events": events,
            "days": len(days),
            "lake_bytes": int(lake_bytes),
            "first": min(starts) if starts else None,
            "last": max(starts) if starts else None,
        }

    def _read_columns(self, rel: str, columns: list[str]) -> pa.Table:
        if is_shared(rel) and self.shared is not None:
            return self.shared.read_parquet(rel, columns=columns)
        return pq.read_table(self.lake / rel, columns=columns)

    def _delete_before(self, older_than: float) -> int:
        doomed = [s for s in self.segments() if s.min_started_at < older_than]
        rewrites: list[tuple[Segment, Segment | None, int]] = []
        new_segments: list[Segment] = []
        try:
            for seg in doomed:
                if seg.max_started_at < older_than:
                    rewrites.append((seg, None, seg.executions))
                    continue
                executions, events = read_segment(self.lake, seg, self.shared)
                keep = pc.greater_equal(executions.column("started_at"), older_than)
                kept = executions.filter(keep)
                kept_events = events.filter(
                    pc.is_in(events.column("execution_id"), value_set=kept.column("id"))
                )
                new = (
                    write_segment(
                        self.lake, seg.date, kept, kept_events, shared=self.shared, parallel=True
                    )
                    if kept.num_rows
                    else None
                )
                if new is not None:
                    new_segments.append(new)
                rewrites.append((seg, new, executions.num_rows - kept.num_rows))
            now = time.time()
            with self.wal.write() as con:
                bump_generation(con)
                deleted = delete_runs(con, "started_at < ?", (older_than,))
                for old, new, removed in rewrites:
                    _retire(con, old, now)
                    if new is not None:
                        _insert_segment(con, new)
                    deleted += removed
                if rewrites:
                    self._publish(con)
        except BaseException:
            _remove_files(self.lake, new_segments)  # shared files: see _compact_batch
            raise
        return deleted

    def clear(self, readers: ReaderHold | None = None, wait: float = 30.0) -> None:
        """Delete every row and every lake file, then wipe the SQLite file's free pages as prune does."""
        with lake_lock(self.lake, wait):
            segs = self.segments()
            with self.wal.write() as con:
                bump_generation(con)
                con.execute("DELETE FROM scores")
                clear_rows(con)
                con.execute("DELETE FROM segments")
                if any(is_shared(s.executions_path) for s in segs):
                    self._publish(con)
            _remove_files(self.lake, segs, self.shared)
            _drop_levels(self.lake)
            self.cleanup(grace=0.0)
            left = read_pending(self.lake) or {"files": [], "since": time.time()}
            left["vacuum"] = True
            _write_pending(self.lake, left)
        assert self.wal.path is not None  # a compactor is made for a store on disk only
        wipe_pending(self.lake, self.wal.path, readers, self.wal.con())

    # --- housekeeping ---

    def segments(self) -> list[Segment]:
        """The segments listed in the manifest now."""
        con = self.wal.con()
        fields = ", ".join(Segment.__dataclass_fields__)
        return [
            Segment(*row)
            for row in con.execute(f"SELECT {fields} FROM segments ORDER BY min_started_at")
        ]

    def orphans(self) -> list[Path]:
        """Lake files that the manifest does not list (a crash or a retirement left them)."""
        con = self.wal.con()
        listed: set[str] = set()
        for row in con.execute("SELECT executions_path, events_path, rollup_path FROM segments"):
            listed.update(rel for rel in row if rel)
        found = []
        for kind in KINDS:
            root = self.lake / kind
            if not root.is_dir():
                continue
            for path in root.rglob("*"):
                if path.is_file() and path.relative_to(self.lake).as_posix() not in listed:
                    found.append(path)
        return found

    def cleanup(self, grace: float = RETIRED_GRACE, shared: bool = True) -> int:
        """Remove unlisted files (hold the lake lock); retired ones only after `grace`.

        `shared=False` leaves the shared lake alone (no requests to it).
        """
        con = self.wal.con()
        now = time.time()
        young = {
            r[0]
            for r in con.execute(
                "SELECT path FROM retired_files WHERE retired_at > ?", (now - grace,)
            )
        }
        removed = 0
        for path in self.orphans():
            rel = path.relative_to(self.lake).as_posix()
            if rel in young:
                continue
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        if self.shared is not None and shared:
            # The shared lake: this host's prefix only; other hosts tidy their own.
            removed += self.shared.cleanup(
                {p for s in self.segments() for p in segment_files(s)}, young, grace
            )
        with self.wal.write(con) as c:
            c.execute("DELETE FROM retired_files WHERE retired_at <= ?", (now - grace,))
        for kind in KINDS:
            root = self.lake / kind
            if root.is_dir():
                for part in root.iterdir():
                    if part.is_dir() and not any(part.iterdir()):
                        part.rmdir()
        return removed


class _Changed(Exception):
    """The tail or manifest changed between reading and committing."""
