"""Shared pieces of the benchmarks: the machine, timing, and the big stores they query.

Datasets come from `fixtures.generate_arrow` (seed 0, 90 days ending BENCH_END)
and are cached under bench/out/data/, so a second run skips building them.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA = OUT / "data"
BENCH_END = "2025-06-30T00:00:00+00:00"
BENCH_END_TS = 1751241600.0
SEED = 0
# Bump when the generator or the way stores are built changes: cached datasets are rebuilt.
DATASET_VERSION = 1
# generate_arrow's rows depend on its chunk size: every dataset is made with this one, so
# the naive store and the lake of one size hold the very same executions.
CHUNK = 1_000_000

sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    """CPU, cores, RAM, Python and library versions, date: what a figure was measured on."""
    import duckdb
    import polars
    import pyarrow

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    disk = shutil.disk_usage(OUT if OUT.exists() else ROOT)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram,
        "disk_free_gb": round(disk.free / 1e9, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pyarrow": pyarrow.__version__,
        "sqlite": sqlite3.sqlite_version,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def measure(fn: Callable[[], Any], repeat: int = 7, budget: float = 20.0) -> dict[str, float]:
    """Milliseconds of the first call and the median of up to `repeat` more (fewer past `budget` s)."""
    start = time.perf_counter()
    fn()
    first = (time.perf_counter() - start) * 1000
    times = []
    deadline = time.perf_counter() + budget
    for _ in range(repeat):
        if times and time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    # With repeat=0 (calls that take many seconds) the one call stands for both.
    warm = statistics.median(times) if times else first
    return {"first_ms": first, "warm_ms": warm, "runs": len(times) + (0 if times else 1)}


def size_label(n: int) -> str:
    """1000000 -> '1M', 100000 -> '100k'."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def dir_bytes(path: Path) -> int:
    """Bytes of every file under `path` (or of the file itself)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- datasets ------------------------------------------------------------------------


def arrow_chunks(
    n: int, chunk: int = CHUNK, seed: int = SEED, days: float = 90, end: Any = BENCH_END
) -> Iterator[tuple[Any, Any]]:
    """The benchmark rows as (executions, events) Arrow chunks, oldest first, ending at `end`."""
    from kagura.synthetic import fixtures

    yield from fixtures.generate_arrow(n, seed=seed, days=days, end=end, chunk=chunk)


def pairs_of(executions: Any, events: Any) -> list[tuple[dict, list[dict]]]:
    """(row, events) pairs of one Arrow chunk (3 events per execution, in order)."""
    rows = executions.to_pylist()
    evs = events.to_pylist()
    return [(row, evs[3 * i : 3 * i + 3]) for i, row in enumerate(rows)]


@contextmanager
def _building(folder: Path) -> Iterator[None]:
    """Hold the build lock of one dataset: two benchmark processes never build it at once."""
    DATA.mkdir(parents=True, exist_ok=True)
    fd = os.open(DATA / f".{folder.name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process builds it
        yield
    finally:
        os.close(fd)


def _ready(folder: Path, n: int) -> dict[str, Any] | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("n") != n or meta.get("version") != DATASET_VERSION or meta.get("chunk") != CHUNK:
        return None
    return meta


def build_lake(n: int, log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """A store of `n` executions written straight into the lake; (db path, build figures).

    The store's own segment writer (compaction.write_segment: sorted, zstd,
    root trace ids elided) makes one segment per UTC date of each generated
    chunk, and the segments are listed in the manifest, skipping the trip
    through SQLite: the layout a lake reaches once small segments are merged,
    built in minutes where compacting 10M executions takes hours here.
    """
    folder = DATA / f"lake_{size_label(n)}"
    with _building(folder):
        meta = _ready(folder, n)
        if meta is None:
            meta = _build_lake(folder, n, log)
    return folder / "telemetry.db", meta


def _build_lake(folder: Path, n: int, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np
    import pyarrow.compute as pc

    from kagura.observability.eventstore import EventStore
    from kagura.observability.store import compaction

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    db = folder / "telemetry.db"
    written = 0
    segments = 0
    start = time.perf_counter()
    store = EventStore(db, auto_compact=False)
    try:
        for executions, events in arrow_chunks(n):
            days = pc.cast(pc.floor(pc.divide(executions.column("started_at"), 86400.0)), "int64")
            # An event belongs to its execution's date (3 events per execution, in order).
            event_days = np.repeat(days.to_numpy(), 3)
            new = []
            for day in pc.unique(days).to_pylist():
                mask = pc.equal(days, day)
                ex = executions.filter(mask)
                ev = events.filter(np.equal(event_days, day))
                date = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
                new.append(compaction.write_segment(store.lake, date, ex, ev))
            with store._wal.write() as con:  # list the segments, as compaction does
                for seg in new:
                    compaction._insert_segment(con, seg)
            written += executions.num_rows
            segments += len(new)
            log(f"  lake {size_label(n)}: {written:,} executions, {segments} segments")
    finally:
        store.close()
    meta = {
        "n": n,
        "version": DATASET_VERSION,
        "seconds": time.perf_counter() - start,
        "segments": segments,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def build_store(n: int, log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """A store of `n` executions, all in the lake (the same as build_lake)."""
    return build_lake(n, log=log)


def build_naive(n: int, log: Callable[[str], None] = print) -> Path:
    """A naive store (bench/naive.py) holding the same `n` executions."""
    folder = DATA / f"naive_{size_label(n)}"
    db = folder / "naive.db"
    with _building(folder):
        if _ready(folder, n) is None:
            _build_naive(folder, n, log)
    return db


def _build_naive(folder: Path, n: int, log: Callable[[str], None]) -> None:
    from naive import NaiveStore, blob_row

    db = folder / "naive.db"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    store = NaiveStore(db)
    done = 0
    for executions, events in arrow_chunks(n):
        store.bulk_load([blob_row(row, evs) for row, evs in pairs_of(executions, events)])
        done += executions.num_rows
        log(f"  naive {size_label(n)}: {done:,} executions")
    (folder / "meta.json").write_text(
        json.dumps({"n": n, "version": DATASET_VERSION, "chunk": CHUNK})
    )
