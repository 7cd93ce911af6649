"""Retention under load: prune while writers record and a compactor compacts.

The store starts with old runs (in the lake and the tail, some on the same
date as the cutoff, so segments are rewritten, not just dropped) and recent
runs; three writers add recent runs and a compactor runs, while
`kagura monitor prune` deletes what started before the cutoff. Exactly the old
runs go: the count it reports is the number of old runs, and everything else,
including every run the writers logged, is there once.
"""

from __future__ import annotations

import json
import random
import time

from kagura.observability import EventStore

from . import harness
from .conftest import LONG, cli, figures

SECONDS = 30.0 if LONG else 6.0
DAY = 86400.0


def test_prune_under_load_removes_exactly_the_old_runs(db, tmp_path, children):
    rng = random.Random(30)
    now = time.time()
    cutoff = now - 30 * DAY
    truth = harness.Truth()
    old, recent = [], []
    store = EventStore(db, auto_compact=False)
    for round_ in range(3):
        batch = [harness.new_run(rng, cutoff - 10 * DAY, cutoff - 1) for _ in range(30)]
        batch += [harness.new_run(rng, cutoff - 3600, cutoff - 1) for _ in range(10)]
        batch += [harness.new_run(rng, cutoff + 1, cutoff + 3600) for _ in range(10)]
        batch += [harness.new_run(rng, cutoff + 3600, now - DAY) for _ in range(20)]
        store.append_many([r.rows() for r in batch])
        if round_ < 2:
            store.compact()
        for run in batch:
            (old if run.started_at < cutoff else recent).append(run)
    store.close()
    truth.apply(recent)

    logs = [tmp_path / f"writer-{i}.jsonl" for i in range(3)]
    writers = [
        children(
            harness.command(
                "writer", "--db", db, "--log", log, "--seed", 300 + i,
                "--seconds", SECONDS, "--days", 2, "--max-batch", 6, "--pause", 0.01,
            )
        )
        for i, log in enumerate(logs)
    ]  # fmt: skip
    for writer in writers:
        assert writer.stdout.readline() == b"ready\n", writer.stderr.read().decode()
    compactor = children(
        harness.command("compactor", "--db", db, "--seconds", SECONDS, "--pause", 0.2)
    )
    assert compactor.stdout.readline() == b"ready\n"
    time.sleep(min(2.0, SECONDS / 3))

    first = cli("monitor", "prune", "--older-than", str(cutoff), "--yes", "--json", "--db", str(db))
    second = cli(
        "monitor", "prune", "--older-than", str(cutoff), "--yes", "--json", "--db", str(db)
    )
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for proc in [*writers, compactor]:
        proc.wait(timeout=SECONDS + 120)
        err = proc.stderr.read().decode()
        assert proc.returncode == 0 and not err.strip(), err[-2000:]

    assert json.loads(first.stdout)["deleted"] == len(old)
    assert json.loads(second.stdout)["deleted"] == 0
    for log in logs:
        found, _, _ = harness.read_store(db)
        assert truth.absorb_log(log, found) == "none"
    harness.assert_exact(db, truth)
    store = EventStore(db, auto_compact=False)
    assert store.get_summary_stats(until=cutoff)["total_executions"] == 0
    harness.assert_store_totals(store, truth)
    store.close()
    figures(
        "retention",
        seconds=SECONDS,
        old_runs=len(old),
        kept=len(truth.runs),
        written_during_prune=len(truth.runs) - len(recent),
    )
