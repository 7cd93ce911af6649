"""Spark over a shared lake (a folder with the host=<id>/ layout): the same answers as DuckDB."""

from __future__ import annotations

import pytest

import kagura.spark as ks
from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures

END = "2025-06-12T18:00:00+00:00"


@pytest.fixture(scope="module")
def fleet_lake(tmp_path_factory):
    """Two hosts' runs compacted into one shared folder; its path."""
    folder = tmp_path_factory.mktemp("fleet")
    lake = folder / "lake"
    mp = pytest.MonkeyPatch()
    try:
        for i, host in enumerate(("spark-a", "spark-b")):
            mp.setenv("KAGURA_HOST_ID", host)
            with EventStore(
                folder / host / "telemetry.db", lake=str(lake), auto_compact=False
            ) as s:
                fixtures.fill(s, 300, seed=10 + i, end=END, days=5)
                assert s.compact()["executions"] == 300
    finally:
        mp.undo()
    return lake


@pytest.mark.parametrize("name", ["summary_stats", "cost_by_agent", "cost_by_date"])
def test_catalogue_on_spark_equals_duckdb_over_the_fleet(spark, fleet_lake, name):
    duck = EventStore(":memory:", lake=str(fleet_lake)).run(name).rows()
    on_spark = ks.run(name, spark, str(fleet_lake)).rows()
    assert len(on_spark) == len(duck) > 0
    key = "agent_name" if name == "cost_by_agent" else None
    if key:
        duck, on_spark = (sorted(r, key=lambda x: x[key]) for r in (duck, on_spark))
    for mine, theirs in zip(on_spark, duck, strict=True):
        assert mine.keys() == theirs.keys()
        for column, value in theirs.items():
            if isinstance(value, float):
                assert mine[column] == pytest.approx(value, rel=1e-9), column
            else:
                assert mine[column] == value, column
    if name == "summary_stats":
        assert duck[0]["total_executions"] == 600


def test_spark_reads_one_host_with_the_filter(spark, fleet_lake, monkeypatch):
    monkeypatch.setenv("KAGURA_LAKE_HOSTS", "spark-b")
    rows = ks.run("summary_stats", spark, str(fleet_lake)).rows()
    assert rows[0]["total_executions"] == 300
