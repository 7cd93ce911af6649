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
from kagura.observability.store.rows import execution_row, new_execution_id
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
    """A store with a lake of 14 days and a tail: 1,206 runs compacted, 153 more in SQLite.

    Nine of them carry users and tags (the synthetic runs have none), for the files
    that group by those: six in the lake, three in the tail (see PEOPLE).
    """
    folder = tmp_path_factory.mktemp("spark-store")
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    slowdown = {"agent": "summarizer", "factor": 1.6, "days": 3}
    fixtures.fill(store, 1200, seed=3, end=END, days=14, prices=_prices(), slowdown=slowdown)
    ids = _people(store, PEOPLE[:6])
    store.compact()
    fixtures.fill(store, 150, seed=4, end=END, days=2, prices=_prices())
    ids += _people(store, PEOPLE[6:])
    # scores (kept in SQLite only): numbers, booleans, tied labels, and a rescore
    for run_id, quality, passed, tone in zip(
        ids,
        [0.9, 0.4, 0.7, 0.2, 1.0, 0.6],
        [True, False, True, True, False, True],
        ["friendly", "curt", "curt", "friendly", "warm", "warm"],
        strict=False,
    ):
        store.score(run_id, "quality", quality)
        store.score(run_id, "passed", passed)
        store.score(run_id, "tone", tone)
    store.score(ids[1], "quality", 0.8)  # the newest score of a name counts
    # the run of an hour ago scores low: a drop from the baseline for score_regressions
    store.score(ids[7], "quality", 0.1)
    store.score(ids[7], "passed", False)
    yield store
    store.close()


# (hours before END, user, tags, cost, status): runs of agent "summary-tagger"
PEOPLE = [
    (50, "ann", {"beta": True, "team": "blue"}, 0.5, "completed"),
    (51, "bob", {"team": "red", "tier": 2}, 1.5, "failed"),
    (52, "ann", {"beta": True}, 0.25, "completed"),
    (53, None, {"team": "Blue Whale"}, 0.125, "completed"),
    (300, "cy", None, 2.0, "completed"),
    (54, "bob", {"beta": True, "team": "blue"}, None, "completed"),  # unpriced
    (55, "ann", {"team": "blue"}, 0.75, "completed"),
    (1, "bob", {"beta": True}, 0.02, "completed"),  # today
    (0.5, "cy", None, 0.03, "failed"),  # today
]


def _people(store: EventStore, runs: list) -> list[str]:
    """Append `runs` (rows of PEOPLE) as top-level runs with a user and tags; their ids."""
    end = fixtures.parse_end(END)
    ids = []
    for hours, user, tags, cost, status in runs:
        started = end - hours * 3600
        run_id = new_execution_id(started)
        ids.append(run_id)
        store.append(
            execution_row(
                id=run_id,
                agent_name="summary-tagger",
                started_at=started,
                ended_at=started + 2.0,
                status=status,
                error="quota exceeded for the blue team" if status == "failed" else None,
                user_id=user,
                tags=tags,
                total_cost=cost,
                llm_calls=1,
                unpriced_calls=1 if cost is None else 0,
                total_tokens=100,
            ),
            [],
        )
    return ids


def _prices() -> dict[str, tuple[float, float]]:
    """The checked-in sample's prices (no litellm import needed)."""
    meta = json.loads((Path(__file__).parents[2] / "data" / "fixtures" / "sample.json").read_text())
    return {
        name: (p["input_cost_per_token"], p["output_cost_per_token"])
        for name, p in meta["prices"].items()
    }
