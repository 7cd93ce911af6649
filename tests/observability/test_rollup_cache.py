"""Rollups kept in memory: blocks of days merged exactly, one version per manifest, rebuilt
when another process compacts, and written for the next process to start from."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow.compute as pc
import pytest
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store import planner
from kagura.observability.store.rollups import DAY, LEVELS_FILE, WIDTHS, coarsen

H = 3600
T0 = 1_750_000_000 - 1_750_000_000 % DAY  # 2025-06-15T00:00:00Z, a UTC midnight


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / "telemetry.db", auto_compact=False)
    yield s
    s.close()


def test_coarsen_adds_counts_and_histograms_by_hand(store):
    # Day one: two runs of 1 s and one of 2 s at hours 1 and 5; day two: one run of 1 s.
    store.append_many(
        [
            run("a", T0 + 1 * H, duration=1.0),
            run("a", T0 + 5 * H, duration=1.0),
            run("a", T0 + 5 * H + 60, duration=2.0, status="failed"),
            run("a", T0 + DAY + 2 * H, duration=1.0),
        ]
    )
    store.compact()
    from kagura.observability.store.rollups import concat

    cache = store._rollups_cache()
    hourly = concat([cache._hours_of(store.lake, s) for s in store.segments()])
    days = coarsen(hourly, DAY).filter(pc.is_valid(pc.field("agent_name")))
    runs = [(r["hour"], r["status"], r["runs"]) for r in days.to_pylist() if r["runs"]]
    assert runs == [(T0, "completed", 2), (T0, "failed", 1), (T0 + DAY, "completed", 1)]
    first = [
        r for r in days.to_pylist() if r["hour"] == T0 and r["status"] == "completed" and r["runs"]
    ]
    # 1.0 s sits in bucket 0 (1.02**-1 < 1 <= 1.02**0): both runs there.
    assert first[0]["duration_buckets"] == [0] and first[0]["duration_counts"] == [2]
    assert first[0]["duration_sum"] == 2.0 and first[0]["min_started_at"] == T0 + H
    two = coarsen(days, 2 * DAY).to_pylist()
    done = [r for r in two if r["status"] == "completed" and r["runs"]]
    assert T0 % (2 * DAY) == 0  # so both days fall in one block of two
    assert [(r["hour"], r["runs"], r["duration_counts"]) for r in done] == [(T0, 3, [3])]


def test_blocks_tile_the_whole_hours_once():
    first, end = 100 * DAY, 190 * DAY
    cases = [
        (None, None, []),
        (100 * DAY + 1234.5, None, []),
        (130 * DAY + 0.5, 150 * DAY - 100, [140 * DAY + 2 * H]),
        (None, 120 * DAY + 5 * H, [110 * DAY]),
        (150 * DAY + H, 150 * DAY + 3 * H, []),
    ]
    for since, until, cuts in cases:
        for widths in (WIDTHS, WIDTHS[:1]):
            picked, hours = planner.blocks(since, until, cuts, first, end, widths)
            covered = [h for h in hours]
            for index, start in picked:
                assert start % widths[index] == 0
                covered += list(range(start, start + widths[index], H))
            lo = first if since is None else -(-since // H) * H
            hi = end if until is None else until // H * H
            wanted = [h for h in range(int(lo), int(hi), H) if h not in cuts]
            inside = sorted(h for h in covered if first <= h < end)
            assert inside == wanted, (since, until, cuts, widths)
            assert len(covered) == len(set(covered))  # nothing twice
            assert not any(c in covered for c in cuts)
            assert all(since is None or h >= since for h in covered)
            assert all(until is None or h + H <= until for h in covered)
    # A whole span of 90 days takes one block; the last 30 days a handful and the edge hours.
    assert len(planner.blocks(None, None, [], first, end, WIDTHS)[0]) == 1
    picked, hours = planner.blocks(160 * DAY + 0.5, None, [], first, end, WIDTHS)
    assert len(picked) <= 6 and len(hours) == 23


def test_a_compaction_in_another_process_gives_the_new_counts(store, tmp_path):
    store.append_many([run("a", T0 + i * H) for i in range(30)])
    store.compact()
    assert store.get_summary_stats()["total_executions"] == 30
    assert store.cost_by_agent().to_dicts()[0]["calls"] == 30
    assert (store.lake / LEVELS_FILE).is_file()  # written for the next process
    code = textwrap.dedent(
        f"""
        from store_rows import run
        from kagura.observability.eventstore import EventStore
        s = EventStore({str(store.path)!r}, auto_compact=False)
        s.append_many([run("b", {T0} + 2 * 86400 + i * 60, status="failed") for i in range(7)])
        s.compact()
        s.close()
        """
    )
    tests = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tests, env=_env(tests))
    summary = store.get_summary_stats()
    assert (summary["total_executions"], summary["failed"]) == (37, 7)
    assert {r["agent_name"]: r["calls"] for r in store.cost_by_agent().to_dicts()} == {
        "a": 30,
        "b": 7,
    }
    exact = store.get_summary_stats(exact=True)
    approx = ("p50_duration", "p95_duration", "approx", "total_cost", "avg_duration")
    assert {k: v for k, v in summary.items() if k not in approx} == {
        k: v for k, v in exact.items() if k not in approx
    }
    assert summary["total_cost"] == pytest.approx(37 * 0.001, rel=1e-12)


def test_a_new_process_starts_from_the_written_levels(store):
    store.append_many([run("a", T0 + i * H, duration=1.0 + i) for i in range(48)])
    store.compact()
    want = store.latency_percentiles()
    saved = (store.lake / LEVELS_FILE).stat().st_mtime_ns
    other = EventStore(store.path, auto_compact=False)
    try:
        assert other.latency_percentiles() == want
        # Started from the file: the same version, so nothing was merged or written again.
        assert (store.lake / LEVELS_FILE).stat().st_mtime_ns == saved
        assert {k[:2] for k in other._rollups_cache()._days} == {
            (s.id, s.rollup_path) for s in store.segments()
        }
    finally:
        other.close()


def test_a_damaged_levels_file_is_merged_anew(store):
    store.append_many([run("a", T0 + i * H) for i in range(10)])
    store.compact()
    store.get_summary_stats()
    (store.lake / LEVELS_FILE).write_bytes(b"not parquet")
    other = EventStore(store.path, auto_compact=False)
    try:
        assert other.get_summary_stats()["total_executions"] == 10
    finally:
        other.close()


def _env(tests: str) -> dict[str, str]:
    import os

    return dict(os.environ, PYTHONPATH=tests + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_retention_and_merges_drop_the_days_they_change(store):
    # Three days of runs in three compactions; then retention cuts day one in its middle.
    for day in range(3):
        store.append_many([run(f"d{day}", T0 + day * DAY + i * H, duration=1.0) for i in range(24)])
        store.compact()
    assert store.get_summary_stats()["total_executions"] == 72
    assert store.delete_old_executions(T0 + 12 * H) == 12
    by_agent = {r["agent_name"]: r["calls"] for r in store.cost_by_agent().to_dicts()}
    assert by_agent == {"d0": 12, "d1": 24, "d2": 24}
    assert store.get_summary_stats()["total_executions"] == 60
    # A window of whole days read from blocks after the change agrees with a scan.
    window = {"since": T0, "until": T0 + 3 * DAY}
    assert (
        store.cost_by_agent(**window).to_dicts()
        == store.cost_by_agent(**window, exact=True).to_dicts()
    )


def test_a_rollup_rewritten_under_its_name_is_read_again(store):
    import os

    import pyarrow.parquet as pq

    from kagura.observability.store import doctor

    store.append_many([run("a", T0 + i * H) for i in range(6)])
    store.compact()
    assert store.get_summary_stats()["total_executions"] == 6
    (seg,) = store.segments()
    path = store.lake / seg.rollup_path
    # A wrong rollup under the same name (it counts every run twice), then the doctor's rebuild.
    table = pq.read_table(path)
    table = table.set_column(
        table.schema.get_field_index("runs"), "runs", pc.multiply(table.column("runs"), 2)
    )
    stat = path.stat()
    pq.write_table(table, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert store.get_summary_stats()["total_executions"] == 12  # the file as it is now
    assert doctor.check(store)["rollups"]
    doctor.repair(store)
    assert store.get_summary_stats()["total_executions"] == 6


def test_saved_levels_split_by_width_in_order_or_not():
    """A saved levels file is read back level by level, whether its widths come in order
    (as the store writes them: sliced) or not (filtered)."""
    import pyarrow as pa

    from kagura.observability.store.rollups import ROLLUP_SCHEMA, WIDTHS, _split_levels

    def level(width, hours):
        rows = {name: [None] * len(hours) for name in ROLLUP_SCHEMA.names}
        rows["hour"] = hours
        table = pa.Table.from_pydict(rows, schema=ROLLUP_SCHEMA)
        return table.append_column("width", pa.array([int(width)] * len(hours), pa.int64()))

    parts = [level(WIDTHS[0], [0, 86400]), level(WIDTHS[1], [0]), level(WIDTHS[3], [0, 691200])]
    for table in (pa.concat_tables(parts), pa.concat_tables(parts[::-1])):
        got = _split_levels(table)
        assert len(got) == len(WIDTHS)
        assert [t.column("hour").to_pylist() for t in got[:4]] == [[0, 86400], [0], [], [0, 691200]]
        assert all(t.num_rows == 0 for t in got[4:])
        assert all(t.schema == ROLLUP_SCHEMA for t in got)
