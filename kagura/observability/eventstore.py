"""EventStore: the facade every front end uses (CLI, Dashboard, notebooks, agents).

It owns one SQLite tail (wal), one Parquet lake (compaction) and one DuckDB
runner (query). Reads take a snapshot of both, cached until the database
changes, and read only the lake segments a query can need.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kagura.config import COMPACT_TAIL_AGE, COMPACT_TAIL_ROWS, default_db_path, ensure_private_dir
from kagura.observability.analytics.catalogue import EVENT_MARGIN, Analytics
from kagura.observability.errors import AmbiguousIdError, QueryError, StoreError
from kagura.observability.store import planner, rollups
from kagura.observability.store.compaction import (
    Compactor,
    LakeBusy,
    ReaderHold,
    lake_lock,
    nothing_compacted,
    pid_alive,
    wipe_pending,
)
from kagura.observability.store.engine import (
    Result,
    Runner,
    Views,
    load_sql,
    local_timezone,
    reads_of,
)
from kagura.observability.store.newest import NewestRows
from kagura.observability.store.rows import (
    HOST,
    check_status,
    event_dict,
    execution_dict,
    id_time_range,
    rows_from_execution_dict,
)
from kagura.observability.store.scope import Scope
from kagura.observability.store.shared_lake import (
    SharedLake,
    host_filter,
    is_shared,
    lake_url,
    segment_of,
)
from kagura.observability.store.tail import (
    Segment,
    Tail,
    TailSnapshot,
    bump_generation,
    clear_rows,
    delete_runs,
)
from kagura.observability.timespec import epoch, parse_cutoff

log = logging.getLogger("kagura.telemetry")

# How often (in appended executions) the writer checks whether the tail wants compacting.
_CHECK_EVERY = 500
# Called with the store before every read: the recorder registers one that waits
# for its background writer, so a read sees every run that has returned.
_BEFORE_READ: list[Callable[[EventStore], Any]] = []


def before_read(hook: Callable[[EventStore], Any]) -> None:
    """Have `hook(store)` run before each read of a store (once per hook)."""
    if hook not in _BEFORE_READ:
        _BEFORE_READ.append(hook)


# Seconds between checks that the processes of running runs are still alive.
_ABANDON_RECHECK = 2.0
# Margin (seconds) around the time an id encodes, for ids made a little before the run's start.
_ID_MARGIN = 60.0


def _newest_hour_with(rows: list[dict[str, Any]], agents: dict, last: int) -> float | None:
    """The latest hour from which each of `agents` has `last` runs in `rows` (agent_name, hour,
    runs_sum), or None when one has fewer."""
    by_agent: dict[str, list[tuple[float, int]]] = {}
    for row in rows:
        by_agent.setdefault(row["agent_name"], []).append((row["hour"], row["runs_sum"]))
    start = None
    for agent in agents:
        total = 0
        for hour, runs in sorted(by_agent.get(agent, ()), reverse=True):
            total += runs
            if total >= last:
                start = hour if start is None else min(start, hour)
                break
        else:
            return None
    return start


class EventStore(Analytics):
    """Telemetry of agent runs: append rows, ask questions, keep the lake tidy."""

    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        auto_compact: bool = True,
        read_only: bool | None = None,
        lake: str | None = None,
        hosts: str | Iterable[str] | None = None,
    ):
        """Open (or create) the store at `db_path`.

        `read_only=None` looks: a store whose file, folder or lake this process
        cannot write is opened read-only (reads work, writes raise StoreError, and
        no file is created beside it); True or False say so outright.

        `lake` (default: KAGURA_LAKE) is a lake many hosts share, `s3://bucket/prefix`
        or a folder: this store compacts into its own `host=<id>/` there, and reads
        every host's runs (its own tail too). `hosts` keeps only these host ids
        (default: KAGURA_LAKE_HOSTS, else all). `EventStore(":memory:", lake=...)`
        only reads the fleet.
        """
        if str(db_path) == ":memory:":
            self.path: Path | None = None
            self.lake: Path | None = None
            read_only = False
        else:
            self.path = Path(db_path).expanduser() if db_path is not None else default_db_path()
            self.lake = (
                self.path.with_suffix("")
                if self.path.suffix
                else self.path.with_name(self.path.name + ".lake")
            )
            if read_only is None:
                read_only = _cannot_write(self.path, self.lake)
            if not read_only:
                ensure_private_dir(self.path.parent)
        self.read_only = bool(read_only)
        # True: every analytic scans the runs instead of reading rollups (as exact=True does).
        self.exact = False
        self.shared: SharedLake | None = None
        self._hosts = None
        # A bad KAGURA_LAKE (or host id) in an agent's environment must not stop
        # recording: runs stay in the tail, and compaction and reads say what is wrong.
        self._lake_error: StoreError | None = None
        try:
            url = lake_url(lake)
            if url:
                self.shared = SharedLake(url, store=f"{HOST}:{self.path or ':memory:'}")
                self._hosts = host_filter(hosts)
        except StoreError as exc:
            if lake is not None or hosts is not None:
                raise
            self.shared, self._lake_error = None, exc
        self._wal = Tail(self.path, read_only=self.read_only)
        self._compactor = (
            Compactor(self._wal, self.lake, self.shared) if self.lake is not None else None
        )
        self._runner: Runner | None = None
        self._rollups: rollups.RollupCache | None = None  # made by the first planned query
        self._newest = NewestRows()  # the newest segment's last row groups, decoded
        self._recent_guess: tuple[tuple, float | None] | None = None  # the last, by its question
        self._scope = Scope()  # where(): every query narrowed to a session, user or tag
        self._auto_compact = auto_compact and self._compactor is not None and not self.read_only
        self._appended = 0
        self._compacting: threading.Thread | None = None
        self._readers = ReaderHold(self.lake) if self.lake is not None else None
        self._let_go: weakref.finalize | None = None
        if (
            self._compactor is not None
            and self.lake is not None
            and self.lake.is_dir()
            and not self.read_only
        ):
            self._recover()

    def __repr__(self) -> str:
        return f"EventStore({str(self.path) if self.path else ':memory:'!r})"

    @property
    def db_path(self) -> Path | str:
        """The database file (a Path), or ":memory:" for an in-memory store (Kagura's attribute)."""
        return self.path if self.path is not None else ":memory:"

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's database connection and the query engine."""
        if self._compacting is not None:
            self._compacting.join(timeout=30)
        self._wal.close()
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        if self._let_go is not None:
            self._let_go()

    def _writable(self) -> None:
        """StoreError when the store was opened read-only."""
        if self.read_only:
            from kagura.observability.errors import StoreError

            raise StoreError(f"{self.path} is read-only here: it can be read, not written")

    def _recover(self) -> None:
        """Remove files a crashed compaction left behind, and what a prune left once no one reads."""
        assert self._compactor is not None and self.lake is not None and self.path is not None
        try:
            with lake_lock(self.lake):
                # The shared lake is tidied by compactions: opening a store sends it no request.
                self._compactor.cleanup(shared=False)
        except LakeBusy:
            pass
        _wipe_quietly(self._readers, self.lake, self.path)

    def _hold_readers(self) -> None:
        """Hold the lake's readers lock from the first read until close (or exit)."""
        if self._readers is None or self._readers.fd is not None or self.read_only:
            return
        self._readers.hold()
        if self._readers.fd is not None and (self._let_go is None or not self._let_go.alive):
            self._let_go = weakref.finalize(
                self, _release_readers, self._readers, self.lake, self.path
            )

    # --- writing -------------------------------------------------------------

    def append(self, execution: dict[str, Any], events: Sequence[dict[str, Any]] = ()) -> None:
        """Upsert one execution row and replace its event rows, in one transaction."""
        self.append_many([(execution, events)])

    def append_many(
        self,
        pairs: Iterable[tuple[dict[str, Any], Sequence[dict[str, Any]]]],
        *,
        wait: bool = True,
    ) -> int:
        """Upsert many executions with their events in one transaction; return how many.

        `wait=False`: raise StoreBusy at once (nothing written) if another writer holds the lock.
        """
        self._writable()
        n = self._wal.append_many(pairs, wait=wait)
        self._note_appended(n)
        return n

    def _note_appended(self, n: int) -> None:
        """Count executions written; now and then, start a compaction if the tail wants one."""
        if self._auto_compact:
            before = self._appended
            self._appended += n
            if before // _CHECK_EVERY != self._appended // _CHECK_EVERY:
                self._maybe_compact()

    async def save_execution(self, execution: dict[str, Any]) -> None:
        """Store one execution given as Kagura's public dict (id, agent_name, events, metrics, ...)."""
        row, events = rows_from_execution_dict(execution)
        self.append(row, events)

    def _maybe_compact(self) -> None:
        if self._compacting is not None and self._compacting.is_alive():
            return
        con = self._wal.con()
        settled, oldest = con.execute(
            "SELECT count(*), min(started_at) FROM executions WHERE status <> 'running'"
        ).fetchone()
        if settled >= COMPACT_TAIL_ROWS or (
            oldest is not None and time.time() - oldest > COMPACT_TAIL_AGE and settled >= 100
        ):
            self._compacting = threading.Thread(
                target=self._compact_quietly, name="kagura-compaction", daemon=True
            )
            self._compacting.start()

    def _lake_ok(self) -> None:
        """StoreError when the shared lake asked for in the environment is malformed."""
        if self._lake_error is not None:
            raise self._lake_error

    def _compact_quietly(self) -> None:
        assert self._compactor is not None  # only started when there is one
        try:
            self._lake_ok()
            self._compactor.compact()
        except Exception as exc:  # telemetry must never break the program it observes
            log.warning("kagura telemetry: compaction failed: %s", exc)

    # --- maintenance ---------------------------------------------------------

    def compact(self, wait: float = 30.0) -> dict[str, Any]:
        """Move every settled run into the Parquet lake now; return counts and seconds."""
        self._writable()
        self._lake_ok()
        if self._compactor is None:
            return nothing_compacted()
        return self._compactor.compact(wait=wait)

    def delete_old_executions(self, older_than: float | datetime) -> int:
        """Delete every execution (and its events) that started before `older_than`; return how many."""
        self._writable()
        cutoff = epoch(older_than, "older_than")
        if cutoff is None:
            raise ValueError("older_than is required (epoch seconds or a datetime)")
        return self._prune(cutoff)["deleted"]

    def prune_plan(self, older_than: Any) -> dict[str, Any]:
        """What prune(older_than) would delete: cutoff, runs, events, days, lake_bytes, first, last."""
        cutoff = parse_cutoff(older_than, "older_than")
        if self._compactor is not None:
            return self._compactor.plan(cutoff)
        con = self._wal.con()
        runs, first, last = con.execute(
            "SELECT count(*), min(started_at), max(started_at) FROM executions WHERE started_at < ?",
            (cutoff,),
        ).fetchone()
        events, days = con.execute(
            "SELECT (SELECT count(*) FROM events WHERE execution_id IN (SELECT id FROM executions WHERE started_at < ?1)), "
            "(SELECT count(DISTINCT CAST(started_at / 86400 AS INTEGER)) FROM executions WHERE started_at < ?1)",
            (cutoff,),
        ).fetchone()
        return {
            "cutoff": cutoff,
            "runs": runs,
            "events": events,
            "days": days,
            "lake_bytes": 0,
            "first": first,
            "last": last,
        }

    def prune(self, older_than: Any) -> dict[str, Any]:
        """Delete every run that started before `older_than` (an age such as "90d", a date, a datetime).

        A zero age or a time not in the past is refused (ValueError): it would
        select every run. Once this returns and no other process has the store
        open, no byte of a deleted run remains in the store's files; files other
        readers may still hold go when the last of them closes the store
        (`pending`, and `kagura monitor doctor`, say what waits).
        Quarantined files (`<lake>/damaged/`) of days wholly before the cutoff
        go too. Returns {"cutoff", "deleted", "pending", "quarantined_removed"}.
        """
        self._writable()
        return self._prune(parse_cutoff(older_than, "older_than"))

    def _prune(self, cutoff: float) -> dict[str, Any]:
        self._lake_ok()
        if self._compactor is not None:
            scored = self._scored_before(cutoff)
            result = self._compactor.prune(cutoff, self._readers, scored=scored)
            from kagura.observability.store.doctor import drop_quarantined

            assert self.lake is not None  # a store with a compactor has a lake
            quarantined = drop_quarantined(self.lake, cutoff)
            return {"cutoff": cutoff, **result, "quarantined_removed": quarantined}
        with self._wal.write() as con:
            bump_generation(con)
            con.execute(
                "DELETE FROM scores WHERE execution_id IN (SELECT id FROM executions WHERE started_at < ?)",
                (cutoff,),
            )
            deleted = delete_runs(con, "started_at < ?", (cutoff,))
        return {"cutoff": cutoff, "deleted": deleted, "pending": None, "quarantined_removed": 0}

    def _scored_before(self, cutoff: float) -> list[str]:
        """The ids of scored runs that started before `cutoff` (their scores go with them)."""
        con = self._wal.con()
        if con.execute("SELECT 1 FROM scores LIMIT 1").fetchone() is None:
            return []
        views = self._with_scores(self._views(None, cutoff))
        if self._runner is None:
            self._runner = Runner()
        text = (
            "SELECT DISTINCT s.execution_id FROM scores AS s JOIN executions AS e"
            " ON e.id = s.execution_id WHERE e.started_at < $cutoff"
        )
        found = self._runner.run(text, {"cutoff": cutoff}, views, "scores of pruned runs")
        return [row["execution_id"] for row in found.rows()]

    def clear_all(self) -> None:
        """Delete every recorded run, in the tail and in the lake, and wipe them from disk as prune does."""
        self._writable()
        self._lake_ok()
        if self._compactor is not None:
            self._compactor.clear(self._readers)
            return
        with self._wal.write() as con:
            bump_generation(con)
            con.execute("DELETE FROM scores")
            clear_rows(con)

    def segments(self) -> list[Segment]:
        """The lake's listed segments, oldest first."""
        return self._compactor.segments() if self._compactor is not None else []

    def tail_size(self) -> dict[str, int]:
        """Rows now in the SQLite tail: executions (running and settled) and events."""
        con = self._wal.con()
        running, settled = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status <> 'running') FROM executions"
        ).fetchone()
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        return {"running": running, "settled": settled, "events": events}

    # --- snapshots and the runner --------------------------------------------

    def _tail(self, with_events: bool) -> TailSnapshot:
        """The current tail snapshot (the wal reuses and extends its last one)."""
        for hook in _BEFORE_READ:
            hook(self)
        snap = self._wal.snapshot(with_events=with_events)
        now = time.monotonic()
        # A process can die while nothing is written: look again every few seconds.
        if snap.marked is None or (snap.has_running and now - snap.marked > _ABANDON_RECHECK):
            snap.executions = _mark_abandoned(snap.executions)
            snap.has_running = bool(
                pc.any(pc.equal(snap.executions.column("status"), "running")).as_py()
            )
            snap.marked = now
        self._lake_ok()
        if self.shared is not None:
            return self._with_fleet(snap)
        return snap

    def _with_fleet(self, snap: TailSnapshot) -> TailSnapshot:
        """`snap` plus every other host's newest manifest in the shared lake (only the chosen hosts).

        This store's own segments come from its SQLite manifest, read with its
        tail in one transaction; other hosts' from the lake.
        """
        shared = self.shared
        assert shared is not None  # called only for a shared lake
        own = shared.host
        keep_own = self._hosts is None or own in self._hosts
        segments = list(snap.segments) if keep_own else []
        skip = own if self.lake is not None else None
        for entry in shared.fleet(self._hosts, skip=skip):
            segments += [segment_of(e, Segment) for e in entry.segments]
        executions, events = snap.executions, snap.events
        if not keep_own:
            executions, events = executions.schema.empty_table(), events.schema.empty_table()
        return TailSnapshot(
            executions,
            events,
            segments,
            snap.taken_at,
            snap.marked,
            snap.has_running and keep_own,
            snap.serial if keep_own else 0,
        )

    def _views(
        self,
        since: float | None = None,
        until: float | None = None,
        events: bool = False,
        segments: list[Segment] | None = None,
        snap: TailSnapshot | None = None,
    ) -> Views:
        """Views over `segments` (or those overlapping [since, until)) and a tail snapshot.

        Queries that go together pass the same `snap`, so they see one state of
        the store even while another process compacts.
        """
        self._hold_readers()
        if snap is None:
            snap = self._tail(with_events=events)
        if segments is None:
            segments = _overlapping(snap.segments, since, until)
        lake = self.lake or Path()  # an in-memory store lists no segments
        key = (snap.serial, events, tuple(s.id for s in segments))
        local = [s for s in segments if not is_shared(s.executions_path)]
        shared = [s for s in segments if is_shared(s.executions_path)]
        if shared and self.shared is None:
            raise StoreError(
                f"{self.path} has runs in a shared lake; open it with that lake (KAGURA_LAKE or --lake)"
            )
        return Views(
            execution_files=[str(lake / s.executions_path) for s in local],
            event_files=[str(lake / s.events_path) for s in local] if events else [],
            tail_executions=snap.executions,
            tail_events=snap.events,
            key=key,
            shared=self.shared if shared else None,
            shared_execution_files=[s.executions_path for s in shared],
            shared_event_files=[s.events_path for s in shared] if events else [],
        )

    def _run_sql(
        self, text: str, label: str, views: Views, params: dict[str, Any], small: bool = False
    ) -> Result:
        if self._runner is None:
            self._runner = Runner()
        scope = self._scope
        if scope:
            text = scope.wrap(text, "events" in reads_of(text))
            params = {**params, **scope.params()}
        return self._runner.run(text, params, views, label, small)

    def where(
        self, session_id: str | None = None, user_id: str | None = None, tag: str | None = None
    ) -> EventStore:
        """This store seen through one session, user and/or tag ("label" or "key=value").

        Every query method of the returned store (analytics, `get_executions`,
        `get_summary_stats`, `sql` excepted) counts only the runs that match,
        and their events. It shares this store's files and connections: close this one.
        """
        import copy

        scope = Scope(session_id, user_id, tag)
        if self._runner is None:
            self._runner = Runner()  # shared with the view, closed with this store
        view = copy.copy(self)
        view._scope = scope
        return view

    def run(self, name: str, **params: Any) -> Result:
        """Run `sql/NAME.sql` with named params over all data; return its Result."""
        return self._scan(name, params)

    def _scan(self, name: str, params: dict[str, Any], small: bool = False) -> Result:
        """`run`; `small`: the answer is known to be a few rows (Runner.run)."""
        text = load_sql(name)
        since = params.get("since")
        until = params.get("until")
        since = since if isinstance(since, (int, float)) and not isinstance(since, bool) else None
        until = until if isinstance(until, (int, float)) and not isinstance(until, bool) else None
        reads = reads_of(text)
        reads_events = "events" in reads
        if reads_events and since is not None:
            # An event lives in the segment of its run's start, which can be before `since`.
            since -= EVENT_MARGIN
        views = self._views(since, until, events=reads_events)
        if "scores" in reads:
            views = self._with_scores(views)
        return self._run_sql(text, f"sql/{name}.sql", views, params, small)

    def _with_scores(self, views: Views) -> Views:
        """`views` and the view `scores`: scores live only in the tail, read now (not cached)."""
        from kagura.observability.store import scores

        return dataclasses.replace(
            views, extra={"scores": scores.read_table(self._wal.con())}, key=()
        )

    def _planned(
        self,
        name: str,
        *,
        exact: bool = False,
        cuts: tuple[float, ...] = (),
        local_dates: bool = False,
        **params: Any,
    ) -> Result:
        """Run analytic NAME from rollups for whole hours and raw rows for the rest (planner.py).

        Scans instead (`sql/NAME.sql`) when `exact`, when NAME has no rollup twin,
        when no segment it needs has a rollup, or when `local_dates` (the answer
        groups by local day) and the local zone's midnights are not on whole hours.
        `cuts`: moments the query's SQL compares run starts with besides since/until.
        """
        # Rollups know no session, user or tag: a narrowed store scans.
        text = (
            None
            if exact or self.exact or self._scope or (self.lake is None and self.shared is None)
            else planner.rollup_sql(name)
        )
        if text is None:
            return self._scan(name, params, small=True)
        since, until = params.get("since"), params.get("until")
        reads_events = "events" in reads_of(text)
        margin = EVENT_MARGIN if reads_events else 0.0
        snap = self._tail(with_events=reads_events)
        chosen = planner.plan(snap.segments, since, until, cuts, margin)
        if not chosen.covered or (
            local_dates
            and not planner.whole_hour_zone(
                local_timezone(),
                [t for t in (since, until, time.time(), *cuts) if t is not None],
            )
        ):
            return self._scan(name, params, small=True)
        views = self._views(segments=chosen.raw, events=reads_events, snap=snap)
        # A segment of the shared lake is named by its path there (`host=<id>/...`, read
        # through the lake's filesystem); the store's own by its absolute path.
        lake = (self.lake or Path()).absolute()
        if self.shared is None and any(is_shared(s.executions_path) for s in chosen.covered):
            raise StoreError(
                f"{self.path} has runs in a shared lake; open it with that lake (KAGURA_LAKE or --lake)"
            )

        def file(rel: str) -> str:
            return rel if is_shared(rel) else str(lake / rel)

        table = (
            self._rollup_rows(
                self.lake, snap.segments, chosen, since, until, local_dates, cuts, margin
            )
            if self.lake is not None
            else None
        )
        views = dataclasses.replace(
            views,
            shared=self.shared,
            rollup_files=(
                [file(s.rollup_path) for s in chosen.covered if s.rollup_path]
                if table is None
                else []
            ),
            rollup_table=table,
            rolled_execution_files=[file(s.executions_path) for s in chosen.rolled],
            rolled_event_files=[file(s.events_path) for s in chosen.rolled] if reads_events else [],
            rolled_ranges=chosen.edges,
            rolled_reach_back=reads_events,
            key=(
                *views.key,
                "rollups" if table is None else "rollups in memory",
                tuple(s.id for s in chosen.covered),
                tuple(s.id for s in chosen.rolled),
            ),
        )
        return self._run_sql(
            text,
            f"sql/rollups/{name}.sql",
            views,
            {**params, "cut_hours": chosen.cut_hours},
            small=True,
        )

    def _rollup_rows(
        self,
        lake: Path,
        segments: list[Segment],
        chosen: planner.Plan,
        since: float | None,
        until: float | None,
        local_dates: bool,
        cuts: tuple[float, ...],
        margin: float,
    ) -> pa.Table | None:
        """The rollup rows that tile the whole hours of [since, until), from memory (rollups.RollupCache).

        Blocks of a day or more where they fit, hourly rows at the edges. None
        (the rollup files are read instead) when the answer groups by local date
        and local dates are not UTC days: then only hours can be merged.
        """
        widths = rollups.WIDTHS
        if local_dates:
            if not planner.utc_days(
                local_timezone(), [t for t in (since, until, time.time(), *cuts) if t is not None]
            ):
                return None
            widths = widths[:1]  # a day at most: no block holds two dates
        if any(is_shared(s.executions_path) for s in chosen.covered):
            return None  # a shared lake's rollups are read where they lie
        # Levels over every listed rollup (one version per manifest, whatever the window):
        # rows of segments outside the window fall in no block inside it.
        with_rollup = [s for s in segments if s.rollup_path and not is_shared(s.executions_path)]
        cache = self._rollups_cache()
        try:
            levels = cache.levels(lake, with_rollup)
            if levels.first is None or levels.end is None:
                return rollups.ROLLUP_SCHEMA.empty_table()
            picked, hours = planner.blocks(
                since, until, chosen.cut_hours, levels.first, levels.end, widths
            )
            return cache.tiled(lake, with_rollup, levels, picked, hours, margin)
        except (OSError, pa.ArrowException) as exc:
            raise QueryError(
                f"a rollup file of the lake is missing or damaged ({exc}); "
                "run `kagura monitor doctor --repair`"
            ) from exc

    def _health_cuts(self, last: int, now: float, since: float | None) -> tuple[float, ...] | None:
        """The hours agent_health scans so that every agent's last `last` finished runs are in them.

        Counted from the hourly rollups of the newest segments backwards: every hour
        from the earliest an agent needs to `now` is a cut hour (scanned), the older
        whole hours are read from rollups. None (scan it all) when an agent has fewer
        than `last` runs in the window or the hours would be more than a week.
        """
        if self.exact or self._scope or self.lake is None or last < 1:
            return None
        lake = self.lake
        snap = self._tail(with_events=False)
        segments = [s for s in snap.segments if s.rollup_path and not is_shared(s.executions_path)]
        if not segments:
            return None
        now_hour = now // planner.HOUR * planner.HOUR
        cache = self._rollups_cache()
        try:
            levels = cache.levels(lake, segments)
        except (OSError, pa.ArrowException) as exc:
            raise QueryError(
                f"a rollup file of the lake is missing or damaged ({exc}); "
                "run `kagura monitor doctor --repair`"
            ) from exc
        # The answer depends on the rollups, `now`'s hour, last, and since only through the
        # hour it falls in and whether it is that hour's start: asked again, kept.
        first = None if since is None else -(-since // planner.HOUR) * planner.HOUR
        start = cache.kept(
            levels,
            ("health", now_hour, first, since == first, last),
            lambda: self._health_start(cache, levels, segments, last, now, since),
        )
        if start is None or now_hour - start > 7 * rollups.DAY:
            return None
        hours = range(int(start), int(now_hour) + int(planner.HOUR), int(planner.HOUR))
        return (now, *map(float, hours))

    def _health_start(
        self,
        cache: rollups.RollupCache,
        levels: rollups.Levels,
        segments: list[Segment],
        last: int,
        now: float,
        since: float | None,
    ) -> float | None:
        """The hour from which on every agent has `last` runs before `now`'s hour (None: one has fewer)."""
        assert self.lake is not None
        lake = self.lake
        now_hour = now // planner.HOUR * planner.HOUR
        first_hour = None if since is None else -(-since // planner.HOUR) * planner.HOUR
        days = levels.tables[0]
        if since is not None:
            days = days.filter(pc.greater(pc.add(days.column("hour"), rollups.DAY), since))
        days = days.filter(pc.less(days.column("hour"), now))
        wanted = {
            r["agent_name"]: r["runs_sum"]
            for r in days.group_by("agent_name").aggregate([("runs", "sum")]).to_pylist()
            if r["agent_name"] is not None and r["runs_sum"]
        }
        if not wanted or min(wanted.values()) < last:
            return None
        seen: list[pa.Table] = []
        for seg in sorted(segments, key=lambda s: s.max_started_at, reverse=True):
            if seg.min_started_at >= now:
                continue
            rows = cache.hourly(lake, seg)
            keep = pc.and_(
                pc.less(rows.column("hour"), now_hour), pc.greater(rows.column("runs"), 0)
            )
            if first_hour is not None:
                keep = pc.and_(keep, pc.greater_equal(rows.column("hour"), first_hour))
            seen.append(rows.filter(keep).select(["hour", "agent_name", "runs"]))
            hourly = (
                pa.concat_tables(seen).group_by(["agent_name", "hour"]).aggregate([("runs", "sum")])
            )
            start = _newest_hour_with(hourly.to_pylist(), wanted, last)
            if start is not None:
                return start
        return None

    def _rollups_cache(self) -> rollups.RollupCache:
        """This store's rollups in memory (made by the first query that reads them)."""
        if self._rollups is None:
            self._rollups = rollups.RollupCache(writable=not self.read_only)
        return self._rollups

    # --- executions ------------------------------------------------------------

    def get_executions(
        self,
        agent_name: str | None = None,
        status: str | None = None,
        since: Any = None,
        limit: int = 100,
        *,
        until: Any = None,
        roots_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Executions newest first, as dicts; `agent_name` is an exact name or a glob ("project_a_*").

        `roots_only=True` leaves out nested runs (those with a parent).
        """
        rows = self._recent(agent_name, status, since, until, limit, roots_only)
        now = time.time()
        return [execution_dict(r, now) for r in rows.rows()]

    def _recent(
        self,
        agent_name: str | None,
        status: str | None,
        since: Any,
        until: Any,
        limit: int,
        roots_only: bool = False,
    ) -> Result:
        """The newest `limit` matching rows (sql/recent_executions.sql), reading the newest segments first."""
        if status is not None:
            check_status(status)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive whole number, got {limit!r}")
        if agent_name is not None and not isinstance(agent_name, str):
            raise ValueError(f"agent_name must be a string, got {type(agent_name).__name__}")
        since, until = epoch(since, "since"), epoch(until, "until")
        params = {
            "agent": agent_name,
            "status": status,
            "since": since,
            "until": until,
            "limit": limit,
            "roots": bool(roots_only),
        }
        text = load_sql("recent_executions")
        snap = self._tail(with_events=False)
        candidates = _overlapping(snap.segments, since, until)
        starts = snap.executions.column("started_at")
        tail_first, tail_last = pc.min(starts).as_py(), pc.max(starts).as_py()
        newest = max(
            [s.max_started_at for s in candidates] + [-math.inf if tail_last is None else tail_last]
        )
        oldest = min(
            [s.min_started_at for s in candidates]
            + [math.inf if tail_first is None else tail_first]
        )
        if until is not None:
            newest = min(newest, until)
        # The newest runs lie in the newest hours: look back over the span the rollups say
        # holds `limit` matching runs (or an hour), and widen it until it does. Segments are
        # sorted by start in small row groups: a window reads little more than itself.
        start = None if until is not None else self._recent_start(snap, candidates, params)
        window = _RECENT_WINDOW if start is None else max(newest - start, 1.0)
        while True:
            low = newest - window
            if low <= oldest or (since is not None and low <= since):
                low = since  # the rest of the store: the last query
            chosen = _overlapping(candidates, low, until)
            views = self._views(segments=chosen, snap=snap)
            if len(chosen) == 1 and low is not None and self.lake is not None:
                if not is_shared(chosen[0].executions_path):
                    try:
                        newest_rows = self._newest.since(self.lake, chosen[0], low)
                    except (OSError, pa.ArrowException):
                        newest_rows = None  # DuckDB reads the file and names what is wrong
                    if newest_rows is not None:
                        views = dataclasses.replace(
                            views,
                            execution_files=[],
                            newest=newest_rows,
                            key=(*views.key, "newest rows"),
                        )
            result = self._run_sql(
                text, "sql/recent_executions.sql", views, {**params, "since": low}, limit <= 10_000
            )
            if low == since or len(result) >= limit:
                return result
            window *= 8

    def _recent_start(
        self, snap: TailSnapshot, segments: list[Segment], params: dict[str, Any]
    ) -> float | None:
        """About where the newest `limit` runs of `params` (agent, status) begin: counted per
        hour in the tail and the newest segments' hourly rollups, the last hour's share
        taken as spread evenly, with a margin. A guess (runs of a roots-only query are
        fewer); None when the rollups don't reach that far back."""
        if self.lake is None or self.shared is not None:
            return None
        agent, status, limit = params["agent"], params["status"], params["limit"]
        key = (snap.serial, tuple(s.id for s in segments), agent, status, limit)
        if self._recent_guess is not None and self._recent_guess[0] == key:
            return self._recent_guess[1]
        start = self._count_back(snap, segments, agent, status, limit)
        self._recent_guess = (key, start)
        return start

    def _count_back(
        self,
        snap: TailSnapshot,
        segments: list[Segment],
        agent: str | None,
        status: str | None,
        limit: int,
    ) -> float | None:
        """`_recent_start`'s count: hour by hour back from the newest, in the tail and rollups."""
        assert self.lake is not None
        counts: dict[int, int] = {}

        def add(agent_name: pa.Array, statuses: pa.Array, hours: pa.Array, runs: pa.Array) -> None:
            names = pc.unique(agent_name).to_pylist()
            matching = [n for n in names if agent is None or fnmatchcase(n, agent) or n == agent]
            keep = pc.is_in(agent_name, pa.array(matching, pa.string()))
            if status is not None:
                keep = pc.and_(keep, pc.equal(statuses, status))
            hours, runs = hours.filter(keep), runs.filter(keep)
            for hour, n in zip(hours.to_pylist(), runs.to_pylist(), strict=True):
                counts[hour] = counts.get(hour, 0) + n

        tail = snap.executions
        if tail.num_rows:
            tail = tail.combine_chunks()
            add(
                tail.column("agent_name").chunk(0),
                tail.column("status").chunk(0),
                pc.cast(
                    pc.floor(pc.divide(tail.column("started_at").chunk(0), 3600.0)), pa.int64()
                ),
                pa.repeat(pa.scalar(1, pa.int64()), tail.num_rows),
            )
        cache = self._rollups_cache()
        newest_first = sorted(segments, key=lambda s: s.max_started_at, reverse=True)
        for index, seg in enumerate(newest_first[:_RECENT_SEGMENTS]):
            if not seg.rollup_path or is_shared(seg.executions_path):
                return None
            try:
                hourly = cache.hourly(self.lake, seg).combine_chunks()
            except (OSError, pa.ArrowException):
                return None  # the query itself names a damaged file
            add(
                hourly.column("agent_name").chunk(0),
                hourly.column("status").chunk(0),
                pc.divide(hourly.column("hour").chunk(0), 3600),
                hourly.column("runs").chunk(0),
            )
            older = (
                newest_first[index + 1].max_started_at if index + 1 < len(newest_first) else None
            )
            seen = 0
            for hour in sorted(counts, reverse=True):
                if older is not None and older >= hour * 3600.0:
                    break  # an older segment may still add runs to this hour
                if seen + counts[hour] >= limit:
                    share = (limit - seen) / counts[hour]
                    return (hour + 1) * 3600.0 - min(1.0, 1.25 * share) * 3600.0
                seen += counts[hour]
        return None

    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        """One execution with its events and child runs, by full id or unique prefix; None if absent."""
        if not isinstance(execution_id, str) or not execution_id.strip():
            raise ValueError("execution id must be a non-empty string")
        snap = self._tail(with_events=True)
        found = self._find(execution_id.strip(), snap)
        if found is None:
            return None
        row, searched = found
        # Its events lie in its own segment; its children start while it runs.
        needed = _overlapping(
            snap.segments, row["started_at"] - 1.0, (row["ended_at"] or time.time()) + 1.0
        )
        if searched is not None and {s.id for s in needed} <= {s.id for s in searched}:
            needed = searched  # the same files: the same views, already made
        views = self._views(segments=needed, events=True, snap=snap)
        result = execution_dict(row)
        events = self._run_sql(
            load_sql("execution_events"),
            "sql/execution_events.sql",
            views,
            {"ids": [row["id"]], "since": None, "until": None, "type": None},
        ).rows()
        result["events"] = [event_dict(e) for e in events]
        children = self._run_sql(
            load_sql("child_executions"), "sql/child_executions.sql", views, {"parent": row["id"]}
        ).rows()
        result["children"] = [execution_dict(c) for c in children]
        result["scores"] = self.get_scores(row["id"])
        return result

    def _find(
        self, prefix: str, snap: TailSnapshot
    ) -> tuple[dict[str, Any], list[Segment] | None] | None:
        """The one execution whose id starts with `prefix`, and the segments searched."""
        text = load_sql("find_execution")
        span = id_time_range(prefix)
        rows: list[dict[str, Any]] = []
        searched: list[Segment] | None = None
        if span is not None:
            searched = _overlapping(snap.segments, span[0] - _ID_MARGIN, span[1] + _ID_MARGIN)
            views = self._views(segments=searched, events=True, snap=snap)
            rows = self._run_sql(text, "sql/find_execution.sql", views, {"prefix": prefix}).rows()
        if not rows:
            # Ids given by callers need not encode their start time: look everywhere.
            searched = None
            rows = self._run_sql(
                text,
                "sql/find_execution.sql",
                self._views(events=True, snap=snap),
                {"prefix": prefix},
            ).rows()
        exact = [r for r in rows if r["id"] == prefix]
        if exact:
            return exact[0], searched
        ids = sorted({r["id"] for r in rows})
        if len(ids) > 1:
            raise AmbiguousIdError(prefix, ids)
        return (rows[0], searched) if rows else None

    def get_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every execution of a trace, oldest first, each with its events."""
        snap = self._tail(with_events=True)
        segments = None
        root = self._find(trace_id, snap) if isinstance(trace_id, str) and trace_id else None
        if root is not None and root[0]["id"] == trace_id:
            # Every run of a trace starts while its root runs.
            row = root[0]
            segments = _overlapping(
                snap.segments, row["started_at"] - 1.0, (row["ended_at"] or time.time()) + 1.0
            )
        views = self._views(segments=segments, events=True, snap=snap)
        runs = self._run_sql(
            load_sql("trace_executions"), "sql/trace_executions.sql", views, {"trace": trace_id}
        ).rows()
        if not runs:
            return []
        events = self._run_sql(
            load_sql("execution_events"),
            "sql/execution_events.sql",
            views,
            {"ids": [r["id"] for r in runs], "since": None, "until": None, "type": None},
        ).rows()
        by_run: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_run.setdefault(event["execution_id"], []).append(event_dict(event))
        out = []
        for run in runs:
            item = execution_dict(run)
            item["events"] = by_run.get(run["id"], [])
            out.append(item)
        return out

    def get_summary_stats(
        self,
        agent_name: str | None = None,
        since: Any = None,
        *,
        until: Any = None,
        exact: bool = False,
    ) -> dict[str, Any]:
        """Counts, success rate, durations (avg, p50, p95), cost and tokens over every matching run.

        Whole hours are read from rollups (p50/p95 within 1%, `approx` True);
        `exact=True` scans every run.
        """
        return self.summary_stats(agent_name, since, until=until, exact=exact).one()

    # --- scores --------------------------------------------------------------------

    def score(self, execution_id: str, name: str, value: Any, comment: str | None = None) -> dict:
        """Give a run a score (a number, True/False or a label); returns the stored score.

        Scores are appended, never replaced: scoring the same name again adds a
        row, and readers use the newest. A run that does not exist is refused
        (StoreError); `execution_id` may be a unique prefix.
        """
        from kagura.observability.errors import StoreError
        from kagura.observability.store import scores

        name, kind, number, label = scores.check(name, value, comment)
        self._writable()
        if not isinstance(execution_id, str) or not execution_id.strip():
            raise ValueError("execution id must be a non-empty string")
        found = self._find(execution_id.strip(), self._tail(with_events=False))
        if found is None:
            where = self.path or ":memory:"
            raise StoreError(
                f"No execution {execution_id!r} in {where}: score a run that exists "
                "(copy an id from `kagura monitor list`)"
            )
        with self._wal.write() as con:
            return scores.insert(con, found[0]["id"], name, kind, number, label, comment)

    def get_scores(self, execution_id: str) -> list[dict[str, Any]]:
        """The scores of one run (full id), oldest first: `{execution_id, name, kind, value, comment, created_at}`."""
        from kagura.observability.store import scores

        return scores.of_execution(self._wal.con(), execution_id)


def _cannot_write(path: Path, lake: Path) -> bool:
    """Whether an existing store is one this process cannot write (file, folder or lake)."""
    import os

    if not path.is_file():
        return False
    places = [path, path.parent] + ([lake] if lake.is_dir() else [])
    return not all(os.access(place, os.W_OK) for place in places)


def _release_readers(readers: ReaderHold, lake: Path, db: Path) -> None:
    """A store lets go of the lake: if it was the last reader, what a prune left goes now."""
    _wipe_quietly(readers, lake, db)
    readers.release()


def _wipe_quietly(readers: ReaderHold | None, lake: Path, db: Path) -> None:
    try:
        wipe_pending(lake, db, readers)
    except Exception as exc:  # telemetry must never break the program it observes
        log.warning("kagura telemetry: could not finish a prune's wipe: %s", exc)


_RECENT_WINDOW = 3600.0  # seconds the newest runs are first looked for in (no rollups)
_RECENT_SEGMENTS = 4  # newest segments whose rollups guess where the newest runs begin


def _overlapping(
    segments: list[Segment], since: float | None, until: float | None
) -> list[Segment]:
    """The segments that can hold runs started in [since, until)."""
    return [
        s
        for s in segments
        if (since is None or s.max_started_at >= since)
        and (until is None or s.min_started_at < until)
    ]


def _mark_abandoned(table: pa.Table) -> pa.Table:
    """Show runs as abandoned when their process on this host is gone."""
    status = table.column("status")
    running = pc.equal(status, "running")
    if table.num_rows == 0 or not pc.any(running).as_py():
        return table
    hosts = table.column("host").to_pylist()
    pids = table.column("pid").to_pylist()
    values = status.to_pylist()
    changed = False
    for i, value in enumerate(values):
        if (
            value == "running"
            and hosts[i] == HOST
            and pids[i] is not None
            and not pid_alive(pids[i])
        ):
            values[i] = "abandoned"
            changed = True
    if not changed:
        return table
    index = table.schema.get_field_index("status")
    return table.set_column(index, "status", pa.array(values, pa.string()))
