"""Health checks and safe repairs of a telemetry store: the SQLite tail, the lake, the manifest.

`check(store)` reports the tail's size, the lake's files and bytes, and where the
manifest and the files disagree: listed files that are missing or unreadable,
files no manifest lists (a crash left them), retired files still in their grace
period, and files other users could read. `repair(store)` fixes what is safe,
holding the lake's lock: it removes unlisted files, moves damaged listed files to
`<lake>/damaged/` and unlists them (their runs are reported as lost), and
tightens permissions, and (re)builds the rollup of a segment that has none or
one that disagrees with it. It never deletes a listed file.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kagura.config import ensure_private_dir
from kagura.observability.errors import StoreError
from kagura.observability.store.compaction import (
    KINDS,
    RETIRED_GRACE,
    LakeBusy,
    lake_lock,
    read_pending,
    reader_pids,
    segment_files,
)
from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES
from kagura.observability.store.shared_lake import is_shared

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore
    from kagura.observability.store.tail import Segment

# Lake subfolder for quarantined files: never read; prune removes those of the days it deletes.
DAMAGED = "damaged"
DAY = 86400.0


def drop_quarantined(lake: Path, before: float) -> int:
    """Remove the quarantined files of the UTC days that lie wholly before `before`; how many.

    A damaged segment's files keep their `date=YYYY-MM-DD` folder under damaged/,
    so prune can take them with the runs of their day: every run in a day's
    segment started that day. A day the cutoff falls inside is left whole (a
    damaged file cannot be rewritten to drop some of its runs).
    """
    from datetime import UTC, datetime

    root = lake / DAMAGED
    if not root.is_dir():
        return 0
    removed = 0
    for path in sorted(root.rglob("*")):
        day = next((p[5:] for p in path.relative_to(root).parts if p.startswith("date=")), "")
        try:
            start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
        if path.is_file() and start + DAY <= before:
            path.unlink(missing_ok=True)
            removed += 1
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


def _files(store: EventStore) -> tuple[Path, Path]:
    """(database, lake) of a store on disk (check() and repair() refuse an in-memory one)."""
    assert store.path is not None and store.lake is not None
    return store.path, store.lake


def check(store: EventStore, *, deep: bool = False, wait: float = 30.0) -> dict[str, Any]:
    """A report of the store's state: db, tail, lake, problems and warnings (JSON-ready)."""
    if store.path is None or store.lake is None:
        raise StoreError("an in-memory store has no files to check; pass a database path")
    with _locked(store, wait):
        return _check(store, deep)


def repair(store: EventStore, *, deep: bool = False, wait: float = 30.0) -> dict[str, Any]:
    """Fix what is safe; return {"before": report, "actions": [...], "after": report}."""
    if store.path is None or store.lake is None:
        raise StoreError("an in-memory store has no files to repair; pass a database path")
    if store.read_only:
        raise StoreError(f"{store.path} is read-only here: it can be checked, not repaired")
    with _locked(store, wait):
        before = _check(store, deep)
        actions: list[dict[str, Any]] = []
        _quarantine(store, before, actions)
        _rebuild_rollups(store, before, actions)
        _remove_orphans(store, before, actions)
        _tighten(before, actions)
        after = _check(store, deep)
    return {"before": before, "actions": actions, "after": after}


# --- checking -------------------------------------------------------------------


class _locked:
    """Hold the lake's lock (so no compaction adds or retires files while we look)."""

    def __init__(self, store: EventStore, wait: float):
        # A read-only store cannot be locked (nor compacted by this process): look without the lock.
        self._cm = None if store.read_only else lake_lock(_files(store)[1], wait)

    def __enter__(self) -> None:
        if self._cm is None:
            return
        try:
            self._cm.__enter__()
        except LakeBusy:
            raise StoreError(
                "a compaction is running on this store; run the doctor again in a moment"
            ) from None

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


def _check(store: EventStore, deep: bool) -> dict[str, Any]:
    # The database file is only stat()ed, never opened: closing a descriptor of it
    # would drop this process's SQLite locks on it.
    db, lake = _files(store)
    con = store._wal.con()
    version = con.execute("PRAGMA user_version").fetchone()[0]
    integrity = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
    segments: list[Segment] = store.segments()
    retired_rows = {
        path: at for path, at in con.execute("SELECT path, retired_at FROM retired_files")
    }
    now = time.time()
    listed: dict[str, tuple[Segment, str]] = {}
    rollups: list[dict[str, Any]] = []
    for seg in segments:
        listed[seg.executions_path] = (seg, "executions")
        listed[seg.events_path] = (seg, "events")
        if not is_shared(seg.executions_path):
            problem = _rollup_problem(lake, seg)
        else:
            # A segment of the shared lake: judged from the manifest alone (no request to
            # the lake); its rollup is built there when the store can reach the lake.
            problem = "no rollup" if not seg.rollup_path and store.shared is not None else None
        if problem:
            rollups.append({"segment": seg.id, "date": seg.date, "problem": problem})
        if seg.rollup_path:
            listed[seg.rollup_path] = (seg, "rollups")

    missing: list[dict[str, Any]] = []
    unreadable: list[dict[str, Any]] = []
    lake_bytes = 0
    for rel, (seg, kind) in sorted(listed.items()):
        if is_shared(rel):
            # In the shared lake, not this folder: never reported missing here, so a
            # repair can't unlist them (the lake's own host tidies its prefix).
            continue
        path = lake / rel
        if kind == "rollups":
            # Checked above: a rollup is rebuilt from its segment, never a loss.
            lake_bytes += _size(path)
            continue
        if not path.is_file():
            missing.append(
                {"segment": seg.id, "path": rel, "date": seg.date, "runs": seg.executions}
            )
            continue
        lake_bytes += path.stat().st_size
        error = _unreadable(path, kind, seg, deep)
        if error:
            unreadable.append(
                {
                    "segment": seg.id,
                    "path": rel,
                    "date": seg.date,
                    "runs": seg.executions,
                    "error": error,
                }
            )

    orphans, retired = [], []
    for path in _lake_files(lake):
        rel = path.relative_to(lake).as_posix()
        if rel in listed:
            continue
        if rel in retired_rows and retired_rows[rel] > now - RETIRED_GRACE:
            retired.append(rel)
        else:
            orphans.append(rel)

    tail = store.tail_size()
    report: dict[str, Any] = {
        "db": {
            "path": str(db),
            "bytes": _size(db),
            "wal_bytes": _size(Path(f"{db}-wal")),
            "schema_version": version,
            "integrity": "ok" if integrity == ["ok"] else "; ".join(integrity[:5]),
        },
        "tail": tail,
        "lake": {
            "path": str(lake),
            "segments": len(segments),
            "files": len(listed),
            "bytes": lake_bytes,
            "executions": sum(s.executions for s in segments),
            "events": sum(s.events for s in segments),
            "quarantined": sum(1 for p in (lake / DAMAGED).rglob("*") if p.is_file()),
        },
        "missing": missing,
        "unreadable": unreadable,
        "orphans": orphans,
        "retired": retired,
        "rollups": rollups,
        "permissions": _loose(db, lake),
    }
    problems = []
    if report["db"]["integrity"] != "ok":
        problems.append(f"{db}: SQLite integrity check failed: {report['db']['integrity']}")
    for item in missing:
        problems.append(
            f"listed lake file {lake / item['path']} is missing (segment {item['segment']}, "
            f"{item['runs']} runs of {item['date']}); `kagura monitor doctor --repair` unlists it"
        )
    for item in unreadable:
        problems.append(
            f"listed lake file {lake / item['path']} is unreadable ({item['error']}); "
            f"`kagura monitor doctor --repair` moves it to {lake / DAMAGED} and unlists it"
        )
    warnings = []
    if rollups:
        warnings.append(
            f"{len(rollups)} segment(s) without a rollup that agrees with them "
            f"({rollups[0]['problem']}, ...); queries scan their runs instead; "
            "the next compaction or `kagura monitor doctor --repair` builds them"
        )
    if orphans:
        warnings.append(
            f"{len(orphans)} lake file(s) not in the manifest (left by a crash; never read); "
            "the next compaction or `kagura monitor doctor --repair` removes them"
        )
    for item in report["permissions"]:
        warnings.append(
            f"{item['path']} is readable by others (mode {item['mode']}, want {item['want']})"
        )
    from kagura.observability.otel.forward import read_status

    report["forwarding"] = read_status(db)
    if report["forwarding"] and report["forwarding"].get("unsent"):
        forwarding = report["forwarding"]
        warnings.append(
            f"{forwarding['unsent']:,} span(s) could not be forwarded to {forwarding.get('endpoint')} "
            f"(last error: {forwarding.get('last_error', '-')}); the runs are stored here, "
            "`kagura monitor export --endpoint` sends them again"
        )
    report["prune_pending"] = _prune_pending(lake)
    pending = report["prune_pending"]
    if pending:
        readers = pending["reader_pids"]
        who = (
            f"the {len(readers)} process(es) reading this store (pid {', '.join(map(str, readers))}) close it"
            if readers
            else "the next process opens or closes this store"
        )
        warnings.append(
            f"a prune at {time.strftime('%Y-%m-%d %H:%M', time.localtime(pending['since']))} left "
            f"{len(pending['files'])} lake file(s) ({pending['bytes']:,} bytes)"
            + (" and the database's free pages" if pending["vacuum"] else "")
            + f" holding deleted runs; they are wiped when {who}"
        )
    report["problems"] = problems
    report["warnings"] = warnings
    report["healthy"] = not problems
    return report


def _prune_pending(lake: Path) -> dict[str, Any] | None:
    """What a prune could not wipe yet (files still there, vacuum owed) and who holds the store open."""
    pending = read_pending(lake)
    if not pending:
        return None
    files = [rel for rel in pending.get("files", []) if (lake / rel).is_file()]
    if not files and not pending.get("vacuum"):
        return None
    return {
        "files": files,
        "bytes": sum(_size(lake / rel) for rel in files),
        "vacuum": bool(pending.get("vacuum")),
        "since": pending.get("since") or 0.0,
        "reader_pids": [pid for pid in reader_pids(lake) or [] if pid != os.getpid()],
    }


def _unreadable(path: Path, kind: str, seg: Segment, deep: bool) -> str | None:
    """Why a listed Parquet file can't serve its rows, or None when it can."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = EXECUTION_NAMES if kind == "executions" else EVENT_NAMES
    expected_rows = seg.executions if kind == "executions" else seg.events
    try:
        meta = pq.ParquetFile(path)
        columns = set(meta.schema_arrow.names)
        rows = meta.metadata.num_rows
        if deep:
            rows = pq.read_table(path).num_rows
    except (OSError, pa.ArrowException) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lacking = [name for name in names if name not in columns]
    if lacking:
        return f"columns missing: {', '.join(lacking[:5])}"
    if rows != expected_rows:
        return f"{rows} rows, the manifest says {expected_rows}"
    return None


def _rollup_problem(lake: Path, seg: Segment) -> str | None:
    """Why a segment's rollup can't stand for it (none, missing, unreadable, other counts), or None."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not seg.rollup_path:
        return "no rollup"
    try:
        runs = pc.sum(pq.read_table(lake / seg.rollup_path, columns=["runs"]).column("runs"))
    except FileNotFoundError:
        return "rollup file missing"
    except (OSError, pa.ArrowException) as exc:
        return f"rollup unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    counted = runs.as_py() or 0
    if counted != seg.executions:
        return f"rollup counts {counted} runs, the segment holds {seg.executions}"
    return None


def _lake_files(lake: Path) -> list[Path]:
    found: list[Path] = []
    for kind in KINDS:
        root = lake / kind
        if root.is_dir():
            found.extend(p for p in root.rglob("*") if p.is_file())
    return sorted(found)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _loose(db: Path, lake: Path) -> list[dict[str, str]]:
    """The store's files and folders that others can read or write."""
    paths = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    if lake.is_dir():
        paths.append(lake)
        paths.extend(lake.rglob("*"))
    found = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue
        if path.is_symlink() or not mode & 0o077:
            continue
        want = 0o700 if path.is_dir() else 0o600
        found.append({"path": str(path), "mode": oct(mode), "want": oct(want)})
    return found


# --- repairing ----------------------------------------------------------------------


def _quarantine(store: EventStore, report: dict[str, Any], actions: list[dict[str, Any]]) -> None:
    """Move the files of damaged segments to damaged/, then unlist those segments."""
    lake = _files(store)[1]
    bad = {item["segment"] for item in report["missing"] + report["unreadable"]}
    if not bad:
        return
    for seg in [s for s in store.segments() if s.id in bad]:
        moved = []
        for rel in segment_files(seg):
            src = lake / rel
            if src.is_file():
                # Moved before unlisting: a crash in between leaves a listed file
                # missing (reported and unlisted next time), never a damaged one read.
                dest = lake / DAMAGED / rel
                ensure_private_dir(dest.parent)
                os.replace(src, dest)
                moved.append(str(dest))
        with store._wal.write() as con:
            con.execute("DELETE FROM segments WHERE id = ?", (seg.id,))
        actions.append(
            {
                "action": "unlisted",
                "segment": seg.id,
                "date": seg.date,
                "runs_lost": seg.executions,
                "events_lost": seg.events,
                "moved_to": moved,
            }
        )


def _rebuild_rollups(
    store: EventStore, report: dict[str, Any], actions: list[dict[str, Any]]
) -> None:
    """Build the rollup of each listed segment that lacks one that agrees with it, and list it."""
    lake, compactor = store.lake, store._compactor
    assert lake is not None and compactor is not None  # repair() refuses an in-memory store
    wanted = {item["segment"] for item in report["rollups"]}
    for seg in [s for s in store.segments() if s.id in wanted]:
        rel = compactor.add_rollup(seg)
        shown = store.shared.shown(rel) if is_shared(rel) and store.shared else str(lake / rel)
        actions.append({"action": "rollup built", "segment": seg.id, "path": shown})


def _remove_orphans(
    store: EventStore, report: dict[str, Any], actions: list[dict[str, Any]]
) -> None:
    """Delete lake files no manifest lists (never the retired ones a reader may still hold)."""
    lake = _files(store)[1]
    listed: set[str] = set()
    for seg in store.segments():
        listed.update(segment_files(seg))
    for rel in report["orphans"]:
        if rel in listed:  # listed since the report (cannot happen under the lock; cheap to check)
            continue
        try:
            (lake / rel).unlink()
        except FileNotFoundError:
            continue
        actions.append({"action": "removed", "path": str(lake / rel)})


def _tighten(report: dict[str, Any], actions: list[dict[str, Any]]) -> None:
    """Make the store's files owner-only (0600 files, 0700 folders)."""
    for item in report["permissions"]:
        path = Path(item["path"])
        try:
            os.chmod(path, int(item["want"], 8))
        except OSError as exc:
            actions.append({"action": "chmod failed", "path": str(path), "error": str(exc)})
            continue
        actions.append({"action": "chmod", "path": str(path), "mode": item["want"]})
