"""SIGKILL a process that records runs and compacts, at random moments, again and again.

The child logs each batch it appends to a ground-truth file (fsynced before the
append, and again after it returns). After every kill the store is read without
the store (sqlite3 + pyarrow over listed files) and must hold every committed run
exactly once, in its last committed state; the one batch in flight is all in or all
out. Every few kills, copies of lake files are planted where no manifest lists
them, and the store's own answers must not change.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

from kagura.observability import EventStore
from kagura.observability.store.compaction import lake_lock

from . import harness
from .conftest import LONG, figures

KILLS = 250 if LONG else 40


def plant_unlisted(db: Path, rng: random.Random, tag: str) -> list[Path]:
    """Put files no manifest lists into the lake: copies of real segments, garbage, a cut copy."""
    lake = harness.lake_of(db)
    listed, _ = harness.listed_files(db)
    planted = []
    for rel in sorted(listed)[:2]:
        src = lake / rel
        copy = src.with_name(f"planted-{tag}-{src.name}")
        shutil.copyfile(src, copy)
        planted.append(copy)
    if listed:
        src = lake / sorted(listed)[0]
        cut = src.with_name(f"planted-{tag}-cut.parquet")
        cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
        planted.append(cut)
    junk = lake / "executions" / "date=2001-01-01" / f"planted-{tag}.parquet"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(bytes(rng.randrange(256) for _ in range(512)))
    planted.append(junk)
    tmp = lake / "events" / "date=2001-01-01" / f"planted-{tag}.parquet.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"PAR1" + b"\0" * 64)
    planted.append(tmp)
    return planted


def check_through_store(db: Path, truth: harness.Truth) -> None:
    """The store's answers agree with the truth while unlisted files sit in the lake."""
    # Holding the lake's lock keeps the store from tidying those files away on open.
    with lake_lock(harness.lake_of(db)):
        store = EventStore(db, auto_compact=False)
        try:
            harness.assert_store_totals(store, truth)
        finally:
            store.close()


def test_random_kills_lose_nothing(db, tmp_path, children):
    rng = random.Random(20240601)
    truth = harness.Truth()
    phases: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    planted: list[Path] = []
    rows_checked = 0
    phase_file = tmp_path / "phase"
    started = time.monotonic()
    for cycle in range(KILLS):
        log = tmp_path / f"truth-{cycle}.jsonl"
        phase_file.write_bytes(b"\0")
        child = children(
            harness.command(
                "writer",
                "--db", db, "--log", log, "--phase", phase_file, "--seed", cycle,
                "--compact-every", rng.choice((1, 1, 2, 3)),
                "--max-batch", rng.choice((1, 3, 8)),
                "--widen", rng.choice((0.0, 0.01, 0.03)),
                "--no-auto-compact",
            )
        )  # fmt: skip
        ready = child.stdout.readline()
        assert ready == b"ready\n", child.stderr.read().decode()
        # Files planted at the last check are gone: the child's open tidied the lake.
        assert not [p for p in planted if p.exists()], "unlisted files survived an open"
        time.sleep(rng.uniform(0.0, 0.35))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()
        phases[harness.read_phase(phase_file)] += 1

        found, dupes, counts = harness.read_store(db)
        outcomes[truth.absorb_log(log, found)] += 1
        harness.assert_exact(db, truth)
        rows_checked += len(truth.runs)
        if cycle % 5 == 4:
            planted = plant_unlisted(db, rng, str(cycle))
            check_through_store(db, truth)
            harness.assert_exact(db, truth)

    # A last, unkilled compaction tidies up: only listed and recently retired files stay.
    store = EventStore(db, auto_compact=False)
    store.compact()
    harness.assert_store_totals(store, truth)
    store.close()
    listed, retired = harness.listed_files(db)
    on_disk = harness.lake_files(db)
    assert listed <= on_disk
    assert on_disk - listed <= retired, sorted(on_disk - listed - retired)[:5]
    harness.assert_exact(db, truth)

    figures(
        "crash",
        kills=KILLS,
        seconds=round(time.monotonic() - started, 1),
        runs=len(truth.runs),
        rows_checked=rows_checked,
        in_flight_batches=dict(outcomes),
        phases=dict(sorted(phases.items())),
    )
    # The harness must really have killed inside compaction and merges, not only appends.
    inside = sum(n for p, n in phases.items() if p.split(":")[0] in ("compact", "merge"))
    assert inside >= KILLS // 5, phases
