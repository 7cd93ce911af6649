"""`kagura demo --synthetic`: millions of synthetic runs written straight into the lake, then what to try."""

from __future__ import annotations

import time
from pathlib import Path

from kagura.cli.options import CliError, UsageError, console, db_path


def demo_synthetic(db: Path | None, runs: int, days: int, seed: int) -> None:
    """Write `runs` synthetic runs over the last `days` days into the store at --db, and say so."""
    try:
        from kagura.synthetic.lake import write_runs
    except ImportError as error:
        raise CliError(
            f"--synthetic needs numpy ({error}): pip install 'kagura-ai[synthetic]'"
        ) from None
    from kagura.cli.progress import Counter
    from kagura.observability.errors import StoreError
    from kagura.observability.store.compaction import LakeBusy

    target = db_path(db)
    out = console()
    try:
        with Counter("Writing synthetic runs", runs) as progress:
            written = write_runs(target, runs, days, seed=seed, progress=progress.advance)
    except LakeBusy:
        raise CliError(
            f"another process is compacting or pruning {target}: try again when it is done"
        ) from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    except (StoreError, OSError) as error:
        raise CliError(f"cannot write synthetic runs into {target}: {error}") from None
    per_run = written.bytes / max(written.runs, 1)
    out.print(
        f"Wrote {written.runs:,} synthetic runs ({written.events:,} events) over the last {days} days "
        f"into {target}: {written.segments:,} lake segments, {written.bytes:,} bytes "
        f"({per_run:.0f} per run), in {written.seconds:.1f} s"
    )
    if written.first is not None:
        span = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(written.first)),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(written.last)),
        )
        out.print(f"  runs from {span[0]} to {span[1]}")
    from kagura.cli.demo import try_next

    try_next(
        out,
        db,
        [
            ("stats", "totals, success rate, p50/p95"),
            ("cost", "spend by agent"),
            ("latency", "percentiles per agent"),
            ("doctor", "segments, files and bytes of the lake"),
        ],
    )
