"""One local SparkSession for every Spark test, and one store both engines read.

The session runs local[2] with few shuffle partitions and no UI; tests here
are marked `spark` so the quick loop can skip them (`-m "not spark"`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kagura.observability.eventstore import EventStore
from kagura.synthetic import fixtures

END = "2025-06-12T18:00:00+00:00"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/spark/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession shared by the whole test session (skips without Java or pyspark)."""
    pytest.importorskip("pyspark")
    pytest.importorskip("sqlglot")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (scripts/ci-deps.sh installs one)")
    import kagura.spark as ks

    session = ks.session("local[2]", app_name="kagura-tests")
    session.conf.set("spark.sql.shuffle.partitions", "1")  # tiny data: one task per stage
    yield session
    session.stop()


@pytest.fixture(scope="session")
def both_store(tmp_path_factory):
    """A store with a lake of 14 days and a tail: 1,200 runs compacted, 150 more in SQLite."""
    folder = tmp_path_factory.mktemp("spark-store")
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    slowdown = {"agent": "summarizer", "factor": 1.6, "days": 3}
    fixtures.fill(store, 1200, seed=3, end=END, days=14, prices=_prices(), slowdown=slowdown)
    store.compact()
    fixtures.fill(store, 150, seed=4, end=END, days=2, prices=_prices())
    yield store
    store.close()


def _prices() -> dict[str, tuple[float, float]]:
    """The checked-in sample's prices (no litellm import needed)."""
    meta = json.loads((Path(__file__).parents[2] / "data" / "fixtures" / "sample.json").read_text())
    return {
        name: (p["input_cost_per_token"], p["output_cost_per_token"])
        for name, p in meta["prices"].items()
    }
