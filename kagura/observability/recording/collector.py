"""What is running now, and how each run reaches the store.

The current execution lives in a context variable, so concurrent agents (asyncio
tasks, threads given a copied context) each see their own run, and a run started
inside another becomes its child (`parent_id`, shared `trace_id`). When a run
ends, its row and events are committed to the store before the call returns
(durable mode, the default): a background writer per store commits every run
that finished while it wrote the previous transaction in one transaction (group
commit), and callers wait for theirs (async callers await it). A run that lasts
is also shown as `running`. Buffered mode (`KAGURA_DURABILITY=buffered`) does
not wait: a process killed before the writer's next commit loses those runs.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import itertools
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kagura import config
from kagura.observability.errors import StoreBusy
from kagura.observability.recording import context as run_context
from kagura.observability.recording import redact
from kagura.observability.store.rows import (
    TYPED_METRICS,
    build_event_row,
    execution_row,
    new_execution_id,
    to_json,
    totals_from_events,
)

if TYPE_CHECKING:
    import inspect


def _logger() -> Any:
    """The "kagura.telemetry" logger (logging is imported on the first message)."""
    import logging

    return logging.getLogger("kagura.telemetry")


_current: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "kagura_current_execution", default=None
)

# Exceptions that stop a run without it having failed on its own (asyncio's
# CancelledError is checked through sys.modules: importing asyncio costs 50 ms).
_CANCELLED = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _cancelled(error: BaseException) -> bool:
    if isinstance(error, _CANCELLED):
        return True
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(error, asyncio.CancelledError)


class Run:
    """One execution in progress: its identity, arguments and the events recorded so far."""

    __slots__ = (
        "id",
        "trace_id",
        "parent_id",
        "agent_name",
        "started_at",
        "model",
        "kwargs",
        "tags",
        "session_id",
        "user_id",
        "metadata",
        "metrics",
        "events",
        "record",
        "_clock",
        "_seq",
    )

    def __init__(
        self,
        agent_name: str,
        kwargs: dict[str, Any],
        parent: Run | None,
        model_name: str | None,
        record: bool,
    ):
        self.id = new_execution_id()
        self.trace_id: str = parent.trace_id if parent is not None else self.id
        self.parent_id = parent.id if parent is not None else None
        self.agent_name = agent_name
        self.started_at = time.time()
        self._clock = time.perf_counter()
        self.model = model_name
        self.kwargs = kwargs
        self.tags: dict[str, Any] = {}
        self.session_id: str | None = None
        self.user_id: str | None = None
        self.metadata: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        # (seq, type, started_at, fields): rows are built once, when the run ends.
        self.events: list[tuple[int, str, float, dict[str, Any]]] = []
        self.record = record
        self._seq = itertools.count()  # next() on a count is atomic: threads may share a run

    def add_event(self, type: str, started_at: float, fields: dict[str, Any]) -> None:
        """Append one event (seq in call order)."""
        self.events.append((next(self._seq), type, started_at, fields))

    def elapsed(self) -> float:
        """Seconds since the run started (monotonic clock)."""
        return time.perf_counter() - self._clock

    def snapshot(self) -> dict[str, Any]:
        """The run as Kagura's execution dict, so far."""
        return {
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "agent_name": self.agent_name,
            "started_at": self.started_at,
            "status": "running",
            "kwargs": dict(self.kwargs),
            "tags": dict(self.tags),
            "session_id": self.session_id,
            "user_id": self.user_id,
            "metadata": dict(self.metadata),
            "model": self.model,
            "metrics": dict(self.metrics),
            "events": [
                {"type": t, "timestamp": ts, "seq": s, "data": dict(f)}
                for s, t, ts, f in sorted(self.events, key=lambda e: e[0])
            ],
        }


def current_run() -> Run | None:
    """The execution running in this context, or None."""
    return _current.get()


def current_execution_id() -> str | None:
    """The id of the execution running in this context, or None."""
    run = _current.get()
    return run.id if run is not None else None


# --- the default store ---------------------------------------------------------

_default_lock = threading.Lock()
_default: dict[str, Any] = {"path": None, "store": None}


def default_store() -> Any:
    """The EventStore at `$KAGURA_HOME/telemetry.db`, opened on first use.

    Reopened when KAGURA_HOME changes, so the store always follows the environment.
    """
    path = config.default_db_path()
    store = _default["store"]
    if store is not None and _default["path"] == path:
        return store
    with _default_lock:
        if _default["store"] is not None and _default["path"] == path:
            return _default["store"]
        from kagura.observability.eventstore import EventStore

        new = EventStore(path)
        old, _default["store"], _default["path"] = _default["store"], new, path
    if old is not None:
        with contextlib.suppress(Exception):
            flush(old)
            old.close()
    return new


# --- the group-commit writer ---------------------------------------------------

Pair = tuple[dict[str, Any], list[dict[str, Any]]]
Build = Callable[[], Pair]

# Finished runs waiting per store before a recording call waits for room (backpressure).
MAX_PENDING = 20_000
# Seconds an idle writer thread lingers before it exits (it restarts on the next write).
IDLE_SECONDS = 10.0
FLUSH_TIMEOUT = 10.0
# Seconds a recorded call waits for its commit before it logs a warning and goes on
# (the run stays queued and is written when the store lets it).
COMMIT_TIMEOUT = 5.0
# A run's `running` row is written only once the run has lasted this long: most runs
# end sooner, and their final row alone is one write instead of two.
RUNNING_AFTER = 0.1


class _Job:
    __slots__ = ("run_id", "build", "collector")

    def __init__(self, run_id: str, build: Build, collector: TelemetryCollector):
        self.run_id, self.build, self.collector = run_id, build, collector


class Commit:
    """One group commit: the runs that finished while the previous one was written.

    `wait()` (threads) and `await commit` (asyncio) return True once the
    transaction is committed, False if it failed or took longer than the timeout.
    """

    __slots__ = ("done", "ok", "_event", "_futures", "_lock")

    def __init__(self, lock: threading.Condition):
        self.done = False
        self.ok = False
        self._lock = lock  # the writer's: guards done, _event and _futures
        self._event: threading.Event | None = None
        self._futures: dict[Any, Any] | None = None  # event loop -> its future

    def wait(self, timeout: float | None = COMMIT_TIMEOUT) -> bool:
        """Block this thread until the commit (True) or a failure or timeout (False)."""
        with self._lock:
            if self.done:
                return self.ok
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout) and self.ok

    def __await__(self) -> Any:
        return self.wait_async().__await__()

    async def wait_async(self, timeout: float = COMMIT_TIMEOUT) -> bool:
        """Await the commit without blocking the event loop; True once committed."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            if self.done:
                return self.ok
            if self._futures is None:
                self._futures = {}
            future = self._futures.get(loop)
            if future is None:
                # One future per loop and commit, whatever the number of runs in it.
                future = self._futures[loop] = loop.create_future()
                timer = loop.call_later(timeout, _settle, future, False)
                future.add_done_callback(lambda _f: timer.cancel())
        return await future

    def _resolve(self, ok: bool) -> None:
        """Mark the commit done and wake its waiters (called by the writer thread)."""
        with self._lock:
            self.done, self.ok = True, ok
            event, futures = self._event, self._futures
        if event is not None:
            event.set()
        if futures:
            for loop, future in futures.items():
                try:
                    loop.call_soon_threadsafe(_settle, future, ok)
                except RuntimeError:
                    pass  # that loop is closed: nobody waits there any more


def _takes_wait(store: Any) -> bool:
    """True when `store.append_many` accepts `wait=` (an EventStore does; a look-alike may not)."""
    import inspect

    try:
        return "wait" in inspect.signature(store.append_many).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _settle(future: Any, ok: bool) -> None:
    if not future.done():
        future.set_result(ok)


# Called after each commit with (store, pairs): the (execution row, event rows) just
# committed, in commit order, `running` rows included. Runs on the writer thread.
_AFTER_COMMIT: list[Callable[[Any, list[Pair]], Any]] = []


def after_commit(hook: Callable[[Any, list[Pair]], Any]) -> Callable[[], None]:
    """Call `hook(store, pairs)` after every commit of recorded runs; returns its remover.

    The hook runs on the writer thread once the callers have been woken; it must
    not block for long (forward the rows to a queue), and its exceptions are logged.
    """
    _AFTER_COMMIT.append(hook)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _AFTER_COMMIT.remove(hook)

    return remove


def _run_after_commit(store: Any, pairs: list[Pair]) -> None:
    for hook in list(_AFTER_COMMIT):
        try:
            hook(store, pairs)
        except Exception as exc:
            _logger().warning("after-commit hook %r failed: %s: %s", hook, type(exc).__name__, exc)


class _Writer:
    """Commits the runs of one store from a background thread, in groups.

    Every run that finishes while a transaction is being written joins the next
    one (group commit), so concurrent runs share commits; callers wait for
    their group's `Commit` (durable mode) or go on at once (buffered mode).
    Runs in progress are listed in `started`; the writer writes the `running`
    row of those that last longer than RUNNING_AFTER. One thread writes
    everything, in order, so a run's final row always follows its running row.
    """

    def __init__(self, store: Any):
        self.store = store
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._commit = Commit(self._cond)
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread sleeps IDLE_SECONDS: a new run must wake it
        self._show_all = False  # flush(): write the running row of every run now
        self._busy = False  # a commit is being written (by the writer or by a caller)
        self._inline = _takes_wait(store)  # commit_here needs append_many(..., wait=False)
        # Runs in progress whose running row is not written yet: id -> (run, collector).
        self.started: dict[str, tuple[Run, TelemetryCollector]] = {}

    def begin(self, run: Run, collector: TelemetryCollector) -> None:
        """Note a run in progress; its running row is written if it lasts."""
        with self._cond:
            self.started[run.id] = (run, collector)
            if not self._alive():
                self._start_thread()
            elif self._idle:
                self._cond.notify_all()

    def submit(self, job: _Job) -> Commit:
        """Queue a finished run; returns the commit it will be part of."""
        with self._cond:
            self.started.pop(job.run_id, None)
            while len(self._pending) >= MAX_PENDING and self._alive():
                self._cond.wait(0.05)
            self._pending.append(job)
            self._submitted += 1
            if not self._alive():
                self._start_thread()
            self._cond.notify_all()
            return self._commit

    def commit_here(self, job: _Job) -> Commit | None:
        """Commit one finished run in the calling thread, if no other commit is under way.

        A sequential program then pays no hand-off to the writer thread and back.
        None (nothing done) when the writer is busy or has runs queued, and the run
        goes through the queue; if another process holds the lock, it is queued too.
        """
        if not self._inline:
            return None
        with self._cond:
            if self._busy or self._pending or self._show_all:
                return None
            self._busy = True
            self.started.pop(job.run_id, None)
        commit = Commit(self._cond)
        queued = None
        try:
            try:
                pair = job.build()
            except Exception as exc:
                job.collector._warn(_store_key(self.store), exc)
                commit._resolve(False)
                return commit
            try:
                self.store.append_many([pair], wait=False)
            except StoreBusy:
                queued = _Job(job.run_id, lambda: pair, job.collector)
            except Exception as exc:
                job.collector._warn(_store_key(self.store), exc)
                commit._resolve(False)
                return commit
            else:
                commit._resolve(True)
                if _AFTER_COMMIT:
                    _run_after_commit(self.store, [pair])
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return self.submit(queued) if queued is not None else commit

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="kagura-telemetry-writer", daemon=True
        )
        self._thread.start()

    def flush(self, timeout: float | None = FLUSH_TIMEOUT) -> bool:
        """Wait until everything recorded so far is written, running rows included."""
        if self._thread is threading.current_thread():
            return True
        with self._cond:
            if self.started and self._alive() and not self._show_all:
                self._show_all = True
                self._submitted += 1  # counted done once those rows are written
                self._cond.notify_all()
            target = self._submitted
            return self._cond.wait_for(lambda: self._done >= target or not self._alive(), timeout)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _due(self, show_all: bool) -> list[tuple[Run, TelemetryCollector]]:
        """Runs in progress whose running row is due now (removed from `started`)."""
        if show_all:
            due = list(self.started.values())
            self.started.clear()
            return due
        now = time.perf_counter()
        due = [(r, c) for r, c in self.started.values() if now - r._clock >= RUNNING_AFTER]
        for run, _ in due:
            del self.started[run.id]
        return due

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._show_all:
                    self._idle = not self.started
                    self._cond.wait(IDLE_SECONDS if self._idle else RUNNING_AFTER / 2)
                    self._idle = False
                while self._busy:  # a caller is committing its own run: the order is kept
                    self._cond.wait()
                show_all, self._show_all = self._show_all, False
                running = self._due(show_all) if self.started else []
                if not self._pending and not running and not show_all:
                    if self.started:
                        continue
                    self._thread = None  # idle: exit; the next run starts a new thread
                    self._cond.notify_all()
                    return
                jobs, self._pending = self._pending, []
                commit, self._commit = self._commit, Commit(self._cond)
                self._busy = True
                self._cond.notify_all()  # room for producers held back by MAX_PENDING
            ok = False
            try:
                ok = self._write(running, jobs, commit)
            finally:
                with self._cond:
                    self._busy = False
                    self._done += len(jobs) + (1 if show_all else 0)
                    self._cond.notify_all()
                if not commit.done:
                    commit._resolve(ok)

    def _write(
        self, running: list[tuple[Run, TelemetryCollector]], jobs: list[_Job], commit: Commit
    ) -> bool:
        pairs: list[Pair] = []
        owners: list[TelemetryCollector] = []
        for run, collector in running:
            try:
                pairs.append((collector._row(run, "running"), []))
                owners.append(collector)
            except Exception as exc:
                collector._warn(_store_key(self.store), exc)
        for job in jobs:
            try:
                pairs.append(job.build())
                owners.append(job.collector)
            except Exception as exc:
                job.collector._warn(_store_key(self.store), exc)
        if not pairs:
            commit._resolve(not jobs)
            return not jobs
        try:
            self.store.append_many(pairs)
        except Exception as exc:
            for collector in {id(c): c for c in owners}.values():
                collector._warn(_store_key(self.store), exc)
            commit._resolve(False)
            return False
        commit._resolve(True)
        if _AFTER_COMMIT:
            _run_after_commit(self.store, pairs)
        return True


_writers_lock = threading.Lock()
_writers: dict[int, _Writer] = {}


def _writer_for(store: Any) -> _Writer:
    writer = _writers.get(id(store))
    if writer is None or writer.store is not store:
        with _writers_lock:
            writer = _writers.get(id(store))
            if writer is None or writer.store is not store:
                writer = _writers[id(store)] = _Writer(store)
                _flush_before_reads(store)
    return writer


def _flush_before_reads(store: Any) -> None:
    """Make every read of a store in this process wait for runs still in flight to it."""
    before_read = getattr(sys.modules.get(type(store).__module__), "before_read", None)
    if before_read is not None:
        before_read(_flush_for_reader)


def _flush_for_reader(store: Any) -> None:
    if _writers:
        flush(store)


def flush(store: Any = None, timeout: float | None = FLUSH_TIMEOUT) -> bool:
    """Wait until recorded runs are in the store (all stores, or those at `store`'s path).

    A reader in this process calls it before reading, so it sees every run that
    has returned. False if a writer did not finish within `timeout` seconds.
    """
    with _writers_lock:
        writers = list(_writers.values())
    if store is not None:
        path = getattr(store, "path", None)
        writers = [
            w
            for w in writers
            if w.store is store or (path is not None and getattr(w.store, "path", None) == path)
        ]
    done = True
    for writer in writers:
        done = writer.flush(timeout) and done
    return done


def _flush_at_exit() -> None:
    flush(timeout=FLUSH_TIMEOUT)


# The parent's writers, kept alive in a forked child: freeing them there would run
# destructors (DuckDB's, SQLite's) for threads that only the parent has, and crash.
_forked_away: list[dict[int, _Writer]] = []


def _reset_after_fork() -> None:
    # The parent's writer threads do not exist in the child; its rows are the parent's to write.
    global _writers_lock, _writers
    _forked_away.append(_writers)
    _writers = {}
    _writers_lock = threading.Lock()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# --- the collector -------------------------------------------------------------


class TelemetryCollector:
    """Records executions and their events into a store (None: the default store)."""

    def __init__(
        self,
        store: Any = None,
        *,
        redactor: redact.Redactor | None = None,
        background: bool = True,
        durability: str | None = None,
    ):
        self._store = store
        self.redactor = redactor or redact.default_redactor
        # background: a writer thread does the store writes (see _Writer); False writes
        # in the caller's thread before the call returns.
        self.background = background
        if durability is not None and durability not in config.DURABILITY_MODES:
            raise ValueError(
                f"unknown durability {durability!r}; use one of: {', '.join(config.DURABILITY_MODES)}"
            )
        # None follows config.durability() (KAGURA_DURABILITY, set_durability()) at each run.
        self.durability = durability
        self._warned: set[Any] = set()

    def __repr__(self) -> str:
        store = repr(self._store) if self._store is not None else "the default store"
        return f"TelemetryCollector(store={store})"

    @property
    def store(self) -> Any:
        """The store runs are written to (the default store is opened on first use)."""
        return self._store if self._store is not None else default_store()

    def durable(self) -> bool:
        """True when a recorded call returns only once its run is committed."""
        return (self.durability or config.durability()) == "durable"

    # -- runs --

    def start(
        self,
        agent_name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        model: str | None = None,
        tags: dict[str, Any] | Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        """A new run, child of the current one; shown as `running` once it lasts RUNNING_AFTER.

        The run gets the session, user, tags and metadata of `kagura.context`
        blocks around it; `tags` (a list of labels, or a dict) and `metadata` add to them.
        """
        record = config.telemetry_enabled()
        cleaned = self._clean_mapping(kwargs) if record else {}
        run = Run(str(agent_name), cleaned, _current.get(), model, record)
        if record:
            self._label(run, tags, metadata)
        if record:
            store = None
            try:
                store = self.store
                if self.background:
                    _writer_for(store).begin(run, self)
                else:
                    store.append(self._row(run, "running"), [])
            except Exception as exc:
                self._warn(_store_key(store), exc)
        return run

    def _finish_here(self, run: Run, error: BaseException | None = None) -> Commit | None:
        """`finish`, committing in this thread when it may (sync code on the main thread)."""
        if (
            run.record
            and self.background
            and threading.current_thread() is threading.main_thread()
            and self.durable()
        ):
            store = None
            try:
                store = self.store
                job = _Job(run.id, self._final_build(run, error), self)
                commit = _writer_for(store).commit_here(job)
                return commit if commit is not None else _writer_for(store).submit(job)
            except Exception as exc:
                self._warn(_store_key(store), exc)
                return None
        return self.finish(run, error)

    def finish(self, run: Run, error: BaseException | None = None) -> Commit | None:
        """Queue the run's final row and events (completed, failed or cancelled).

        Returns the commit the run is part of (None when nothing is queued:
        telemetry off, a store that could not be opened, or background=False,
        which has written the rows before returning).
        """
        if not run.record:
            return None
        return self._write(run.id, self._final_build(run, error))

    def _final_build(self, run: Run, error: BaseException | None) -> Build:
        """What builds the run's final rows, its end time taken now."""
        duration = run.elapsed()
        if error is None:
            status = "completed"
        elif _cancelled(error):
            status = "cancelled"
        else:
            status = "failed"
        return lambda: self._final_rows(run, status, duration, error)

    def wait(self, commit: Commit | None) -> None:
        """Block until `commit` is done, in durable mode; a slow store logs a warning."""
        if commit is not None and self.durable() and not commit.wait(COMMIT_TIMEOUT):
            self._late(commit)

    async def await_commit(self, commit: Commit | None) -> None:
        """Await `commit` without blocking the event loop, in durable mode."""
        if commit is not None and self.durable() and not await commit.wait_async(COMMIT_TIMEOUT):
            self._late(commit)

    def _late(self, commit: Commit) -> None:
        if not commit.done:  # a failed write has logged its own warning
            self._warn(
                "commit",
                TimeoutError(f"the store did not commit within {COMMIT_TIMEOUT:g} s"),
                "telemetry delayed (%s: %s); the agent goes on and the run stays queued, "
                "further delays are logged at debug level",
            )

    @contextlib.asynccontextmanager
    async def track_execution(self, agent_name: str, **kwargs: Any) -> AsyncIterator[str]:
        """Track one execution of `agent_name` called with `kwargs`; yields its id."""
        async with self.arecording(agent_name, kwargs) as run:
            yield run.id

    @contextlib.contextmanager
    def recording(
        self,
        agent_name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        model: str | None = None,
        tags: dict[str, Any] | Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Iterator[Run]:
        """Track one execution around a block of sync code; yields the Run.

        On leaving the block the run is committed before the code goes on
        (durable mode); async code uses `arecording`, which does not block the loop.
        """
        run = self.start(agent_name, kwargs, model=model, tags=tags, metadata=metadata)
        token = _current.set(run)
        try:
            yield run
        except BaseException as exc:
            _current.reset(token)
            self.wait(self._finish_here(run, exc))
            raise
        _current.reset(token)
        self.wait(self._finish_here(run))

    @contextlib.asynccontextmanager
    async def arecording(
        self,
        agent_name: str,
        kwargs: dict[str, Any] | None = None,
        *,
        model: str | None = None,
        tags: dict[str, Any] | Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[Run]:
        """Track one execution around a block of async code; its commit is awaited on exit."""
        run = self.start(agent_name, kwargs, model=model, tags=tags, metadata=metadata)
        token = _current.set(run)
        try:
            yield run
        except BaseException as exc:
            _current.reset(token)
            await self.await_commit(self.finish(run, exc))
            raise
        _current.reset(token)
        await self.await_commit(self.finish(run))

    def get_current_execution(self) -> dict[str, Any] | None:
        """The execution running in this context as a dict, or None."""
        run = _current.get()
        return run.snapshot() if run is not None else None

    # -- events of the current run (no-ops outside a run) --

    def record_llm_call(
        self,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        duration: float,
        cost: float | None = None,
        **data: Any,
    ) -> None:
        """Record one LLM call; cost None is looked up in the price map (None if unknown)."""
        run = _current.get()
        if run is None or not run.record:
            return
        try:
            if cost is None:
                from kagura.observability.recording import pricing

                cost = pricing.cost(model, prompt_tokens, completion_tokens)
            fields = self._event_fields(data)
            fields.update(
                name=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                duration=duration,
                cost=cost,
            )
            fields.setdefault("status", "failed" if fields.get("error") else "completed")
            run.add_event("llm_call", time.time() - (duration or 0.0), fields)
        except Exception as exc:
            self._warn("event", exc)

    def record_tool_call(self, tool_name: str, duration: float, **kwargs: Any) -> None:
        """Record one tool call; `arguments`, `error`, `status` and other fields go with it."""
        self._record_call("tool_call", tool_name, duration, kwargs, with_status=True)

    def record_memory_operation(self, operation: str, duration: float, **kwargs: Any) -> None:
        """Record one memory operation (name = operation, e.g. "load" or "store")."""
        self._record_call("memory_operation", operation, duration, kwargs, with_status=False)

    def _record_call(
        self, kind: str, name: str, duration: float, kwargs: dict[str, Any], with_status: bool
    ) -> None:
        """Add one `kind` event that ended now and took `duration` to the current run."""
        run = _current.get()
        if run is None or not run.record:
            return
        try:
            fields = self._event_fields(kwargs)
            fields.update(name=name, duration=duration)
            if with_status:
                fields.setdefault("status", "failed" if fields.get("error") else "completed")
            run.add_event(kind, time.time() - (duration or 0.0), fields)
        except Exception as exc:
            self._warn("event", exc)

    def record_event(self, event_type: str, **data: Any) -> None:
        """Record an event of any type with free-form data."""
        run = _current.get()
        if run is None or not run.record:
            return
        try:
            run.add_event(str(event_type), time.time(), self._event_fields(data))
        except Exception as exc:
            self._warn("event", exc)

    def record_metric(self, name: str, value: Any) -> None:
        """Set a custom metric of the current execution."""
        run = _current.get()
        if run is not None and run.record:
            run.metrics[str(name)] = self.redactor.clean(value, name)

    def add_tag(self, key: str, value: Any) -> None:
        """Tag the current execution (secret-looking tags are redacted)."""
        run = _current.get()
        if run is not None and run.record:
            self._tag(run, key, value)

    # -- internals --

    def _tag(self, run: Run, key: Any, value: Any) -> None:
        run.tags[str(key)] = self.redactor.clean(value, key)

    def _label(
        self,
        run: Run,
        tags: dict[str, Any] | Sequence[str] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        """Give `run` the context's session, user, tags and metadata, then its own tags and metadata.

        A label tag ("beta") is stored as the tag key with the value true, so
        labels and `add_tag(key, value)` tags share the execution's `tags`.
        """
        try:
            ctx = run_context.current_context()
            run.session_id, run.user_id = ctx.session_id, ctx.user_id
            for label in ctx.tags:
                run.tags[label] = True
            if isinstance(tags, dict):
                for key, value in tags.items():
                    self._tag(run, key, value)
            else:
                for label in run_context.check_tags(tags):
                    run.tags[label] = True
            merged = {**ctx.metadata, **run_context.check_metadata(metadata)}
            if merged:
                run.metadata = self.redactor.clean_mapping(merged)
        except Exception as exc:  # a bad label must not break the agent
            self._warn("labels", exc)

    def _clean_mapping(self, mapping: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return self.redactor.clean_mapping(mapping)
        except Exception as exc:  # a hostile argument must not break the agent
            self._warn("arguments", exc)
            return {"<arguments>": "<unrecordable>"}

    def _event_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """Event fields with free-form values redacted; error text scrubbed of keys."""
        fields = self.redactor.clean_mapping(data) if data else {}
        if fields.get("error") is not None:
            fields["error"] = self.redactor.redact_text(str(fields["error"]))
        return fields

    def _row(self, run: Run, status: str, **fields: Any) -> dict[str, Any]:
        return execution_row(
            id=run.id,
            trace_id=run.trace_id,
            parent_id=run.parent_id,
            agent_name=run.agent_name,
            started_at=run.started_at,
            status=status,
            kwargs=to_json(run.kwargs, cleaned=True),
            tags=to_json(run.tags, cleaned=True) if run.tags else None,
            session_id=run.session_id,
            user_id=run.user_id,
            metadata=to_json(run.metadata, cleaned=True) if run.metadata else None,
            model=run.model,
            **fields,
        )

    def _final_rows(
        self, run: Run, status: str, duration: float, error: BaseException | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        events = []
        for seq, kind, started_at, given in sorted(run.events, key=lambda e: e[0]):
            try:
                events.append(build_event_row(run.id, seq, kind, started_at, given, cleaned=True))
            except (
                ValueError
            ) as exc:  # one bad event (say, a negative duration) is dropped, not the run
                self._warn("event", exc)
        counters = totals_from_events(events)
        metrics = dict(run.metrics)
        for key in TYPED_METRICS:  # an explicit metric wins over the events' sum
            if key in metrics:
                counters[key] = metrics.pop(key)
        fields: dict[str, Any] = {
            "ended_at": run.started_at + duration,
            "duration": duration,
            "metrics": to_json(metrics, cleaned=True) if metrics else None,
            **counters,
        }
        if error is not None:
            fields["error_type"] = type(error).__name__
            fields["error"] = self.redactor.redact_text(_message(error))
        return self._row(run, status, **fields), events

    def flush(self, timeout: float | None = FLUSH_TIMEOUT) -> bool:
        """Wait until this collector's recorded runs are in its store."""
        try:
            store = self.store
        except Exception:
            return True  # no store could be opened: nothing is waiting for it
        return flush(store, timeout)

    def _write(self, run_id: str, build: Build) -> Commit | None:
        """Queue a run's final rows (or append them now); failures are logged once."""
        store = None
        try:
            store = self.store
            if self.background:
                return _writer_for(store).submit(_Job(run_id, build, self))
            row, events = build()
            store.append(row, events)
            if _AFTER_COMMIT:
                _run_after_commit(store, [(row, events)])
        except Exception as exc:
            self._warn(_store_key(store), exc)
        return None

    def _warn(
        self,
        key: Any,
        exc: Exception,
        message: str = "telemetry not recorded (%s: %s); the agent goes on, "
        "further failures are logged at debug level",
    ) -> None:
        """Log the first failure of a kind as a warning, the rest at debug level."""
        key = (key, type(exc).__name__)
        if key in self._warned:
            _logger().debug(message, type(exc).__name__, exc)
            return
        self._warned.add(key)
        _logger().warning(message, type(exc).__name__, exc)


def _store_key(store: Any) -> Any:
    """What identifies a store for the warn-once rule: its path, else the environment's."""
    if store is None:
        return str(config.default_db_path())
    return str(getattr(store, "path", None) or id(store))


def _message(error: BaseException) -> str:
    text = str(error)
    return text if text else type(error).__name__


# --- the decorator API ---------------------------------------------------------


class Telemetry:
    """Instruments functions so that each call is recorded as an execution."""

    def __init__(self, store: Any = None, *, collector: TelemetryCollector | None = None):
        if isinstance(store, TelemetryCollector):
            store, collector = None, store
        self.collector = collector or TelemetryCollector(store)

    def __repr__(self) -> str:
        return f"Telemetry(collector={self.collector!r})"

    @property
    def store(self) -> Any:
        """The store this telemetry writes to."""
        return self.collector.store

    def get_collector(self) -> TelemetryCollector:
        """The collector this telemetry records through (Kagura's name)."""
        return self.collector

    def instrument(
        self, agent_name: str | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A decorator recording each call of a function as an execution named `agent_name`."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            import inspect

            name = agent_name or fn.__name__
            signature = _signature(fn)

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    async with self.collector.arecording(name, _arguments(signature, args, kwargs)):
                        return await fn(*args, **kwargs)

                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.collector.recording(name, _arguments(signature, args, kwargs)):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    import inspect

    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name (positional ones included), defaults applied."""
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)
        except TypeError:
            pass  # the call itself will raise the right error
    named = {f"arg{i}": value for i, value in enumerate(args)}
    named.update(kwargs)
    return named


_global: Telemetry | None = None


def get_global_telemetry() -> Telemetry:
    """The process-wide Telemetry that agents record through (default store unless set)."""
    global _global
    if _global is None:
        _global = Telemetry()
    return _global


def set_global_telemetry(telemetry: Telemetry | TelemetryCollector | None) -> None:
    """Make agents record through `telemetry` (None: back to the default store)."""
    global _global
    if isinstance(telemetry, TelemetryCollector):
        telemetry = Telemetry(collector=telemetry)
    _global = telemetry


# Finished runs also go to an OTLP collector when one is configured (a cheap check otherwise).
if any(
    os.environ.get(name)
    for name in (
        "KAGURA_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )
):
    from kagura.observability.otel import forward

    forward.install_from_env()
