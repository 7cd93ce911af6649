"""The newest runs: a window guessed from the rollups, widened until it holds `limit` runs, and
the newest segment's last row groups decoded once. Every answer must equal the full scan's."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store import compaction
from kagura.observability.store.newest import NewestRows
from kagura.synthetic.lake import write_runs

END = 1_751_241_600.0  # 2025-06-30T00:00:00Z
H = 3600.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """20,000 synthetic runs over two days in row groups of 500, then a tail: new runs of a
    known agent, one of an agent the lake never saw, and a run still going since long ago."""
    db = tmp_path_factory.mktemp("newest") / "telemetry.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compaction, "EXECUTIONS_ROW_GROUP", 500)
        write_runs(db, 20_000, 2.0, seed=7, end=END)
    s = EventStore(db, auto_compact=False)
    agent = s.agent_names()[0]
    s.append_many(
        [run(agent, END + i * 30.0) for i in range(5)]
        + [run("only_in_tail", END + 10.0 + i) for i in range(3)]
        + [run(agent, END - 1.5 * 86400, status="running")]
    )
    yield s
    s.close()


def _scanned(store, **query):
    """The same query over every segment and the tail at once (no window, nothing kept)."""
    params = {"agent": None, "status": None, "since": None, "until": None, "roots": False}
    params.update(query)
    return [r["id"] for r in store.run("recent_executions", **params).rows()]


def test_the_lake_has_many_small_row_groups(store):
    newest = max(store.segments(), key=lambda s: s.max_started_at)
    meta = pq.ParquetFile(store.lake / newest.executions_path).metadata
    assert meta.num_row_groups >= 10 and meta.row_group(0).num_rows == 500


def test_newest_runs_equal_the_full_scan(store):
    agents = store.agent_names()
    agent = agents[0]
    rng = random.Random(11)
    cases = [
        {"limit": 100},
        {"agent": agent, "limit": 100},
        {"agent": agent, "limit": 1},
        {"agent": agent, "limit": 3_000},
        {"agent": agent[:3] + "*", "limit": 250},
        {"agent": "only_in_tail", "limit": 100},
        {"agent": "no_such_agent", "limit": 10},
        {"agent": agents[-1], "status": "failed", "limit": 40},
        {"status": "running", "limit": 10},
        {"limit": 50, "roots": True},
        {"agent": agent, "limit": 100, "until": END - 5 * H + 17.5},
        {"agent": agent, "limit": 100, "since": END - 20 * H + 0.5},
        {"limit": 30_000},
    ]
    for _ in range(12):
        since = END - rng.uniform(0, 2.2) * 86400
        cases.append(
            {
                "agent": rng.choice([None, *agents]),
                "limit": rng.choice([1, 10, 100, 1_000]),
                "since": rng.choice([None, since]),
                "until": rng.choice([None, since + rng.uniform(0.1, 30) * H]),
                "roots": rng.random() < 0.2,
            }
        )
    for case in cases:
        got = store.get_executions(
            case.get("agent"),
            case.get("status"),
            case.get("since"),
            case["limit"],
            until=case.get("until"),
            roots_only=case.get("roots", False),
        )
        assert [r["id"] for r in got] == _scanned(store, **case), case
    assert store._newest._rows is not None  # some answers came from the rows kept


def test_runs_compacted_later_are_seen(tmp_path):
    s = EventStore(tmp_path / "t.db", auto_compact=False)
    s.append_many([run("a", END - 600 + i) for i in range(50)])
    s.compact()
    first = [r["id"] for r in s.get_executions("a", limit=10)]
    s.append_many([run("a", END + i) for i in range(4)])
    s.compact()  # a newer segment replaces the one whose rows were kept
    again = [r["id"] for r in s.get_executions("a", limit=10)]
    assert again[4:] == first[:6] and again[:4] == _scanned(s, agent="a", limit=4)
    s.close()


def _file(path, rows: pa.Table, group: int) -> None:
    pq.write_table(rows, path, row_group_size=group)


class _Seg:
    def __init__(self, name: str):
        self.id, self.executions_path = name, name


@pytest.mark.parametrize("shuffled", [False, True])
def test_kept_rows_are_every_row_from_the_start_asked(tmp_path, shuffled):
    # Starts 0..9999 in row groups of 700; shuffled, any row group can hold a late start.
    starts = list(range(10_000))
    if shuffled:
        random.Random(3).shuffle(starts)
    table = pa.table({"id": [f"r{s}" for s in starts], "started_at": [float(s) for s in starts]})
    _file(tmp_path / "seg.parquet", table, 700)
    kept = NewestRows()
    for low in (9_990.0, 9_500.5, 8_000.0, 9_999.0, 10_500.0, 3_000.0):
        got = kept.since(tmp_path, _Seg("seg.parquet"), low)
        expected = table.filter(pc.greater_equal(table.column("started_at"), low))
        assert got is not None
        assert sorted(got.column("id").to_pylist()) == sorted(expected.column("id").to_pylist())


def test_more_rows_than_it_keeps_are_left_to_the_file(tmp_path, monkeypatch):
    from kagura.observability.store import newest

    monkeypatch.setattr(newest, "KEPT_ROWS", 1_000)
    table = pa.table(
        {"id": [f"r{s}" for s in range(5_000)], "started_at": [float(s) for s in range(5_000)]}
    )
    _file(tmp_path / "seg.parquet", table, 300)
    kept = NewestRows()
    assert kept.since(tmp_path, _Seg("seg.parquet"), 4_200.0).num_rows == 800
    assert kept.since(tmp_path, _Seg("seg.parquet"), 3_000.0) is None  # 2,000 rows: too many
    assert kept.since(tmp_path, _Seg("seg.parquet"), 4_500.0).num_rows == 500


def test_a_damaged_newest_segment_says_how_to_repair(tmp_path):
    from kagura.observability.errors import QueryError

    s = EventStore(tmp_path / "t.db", auto_compact=False)
    s.append_many([run("a", END - 36_000 + 600 * i) for i in range(50)])
    s.compact()
    newest = max(s.segments(), key=lambda g: g.max_started_at)
    path = s.lake / newest.executions_path
    path.write_bytes(path.read_bytes()[:100])  # cut short
    with pytest.raises(QueryError, match="doctor --repair"):
        s.get_executions("a", limit=3)
    path.unlink()
    with pytest.raises(QueryError, match="doctor --repair"):
        s.get_executions("a", limit=3)
    s.close()
