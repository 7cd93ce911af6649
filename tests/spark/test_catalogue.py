"""Every sql/ catalogue file answers the same on Spark as on DuckDB, over the same store.

DuckDB's answer is the store's own (EventStore.run); Spark reads the same listed lake
files and the same tail rows. Floats may differ in the last bits (sums in another
order), so they are compared to 1e-9 relative; everything else exactly, row by row.
"""

from __future__ import annotations

import datetime
import decimal
import math
import os

import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.store import engine as query
from kagura.synthetic.fixtures import parse_end

END = parse_end("2025-06-12T18:00:00+00:00")
DAY = 86400.0


def _params(name: str, store: EventStore) -> list[dict]:
    """Params for `name` that make it return rows (and exercise its optional filters)."""
    newest = store.get_executions(limit=1)[0]
    child = next((r for r in store.get_executions(limit=500) if r.get("parent_id")), newest)
    every = {
        "now": END,
        "since": END - 10 * DAY,
        "until": END - DAY,
        "split": END - 3 * DAY,
        "parent": child.get("parent_id") or newest["id"],
        "trace": child.get("trace_id") or newest["id"],
        "prefix": newest["id"][:9],
        "ids": [newest["id"], child["id"]],
        "min_runs": 10,
        "daily": 0.01,
        "monthly": 1.0,
        "per_day": True,
        "window": 3,
        "term": "BLUE",  # in tags and errors of the runs with users (conftest.PEOPLE)
    }
    wanted = query.param_names(query.load_sql(name))
    full = {k: v for k, v in every.items() if k in wanted}
    if "ids" in wanted:  # the newest runs: after `until`
        full.update(since=None, until=None)
    sets = [full]
    if name == "regressions" and not os.environ.get("KAGURA_LONG_TESTS"):
        # one set: the twin's plan is long, and each set takes a minute on 2 busy cores
        return [full]
    if "agent" in wanted:
        sets.append({**full, "agent": "summar*"})
    if "model" in wanted:
        sets.append({**full, "model": "gpt-4o*"})
    if "recent_runs" in wanted:
        sets.append({"since": END - 10 * DAY, "recent_runs": 20, "min_runs": 10})
    if "per_day" in wanted:
        sets.append({**full, "per_day": False})
    return sets


def same(a, b) -> bool:
    """Equal values, floats to 1e-9 relative (Spark's DECIMALs read as floats)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float | decimal.Decimal) and isinstance(b, float | decimal.Decimal | int):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, datetime.date) or isinstance(b, datetime.date):
        return a == b
    return type(a) is type(b) and a == b


def _on_spark() -> list[str]:
    from kagura.spark.translate import NOT_ON_SPARK

    return [e["name"] for e in query.catalogue() if e["name"] not in NOT_ON_SPARK]


def test_files_left_off_spark_say_why(spark, both_store):
    import kagura.spark as ks
    from kagura.observability.errors import QueryError
    from kagura.spark.translate import NOT_ON_SPARK

    # every other file is compared below
    assert set(NOT_ON_SPARK) == {
        "otlp_spans",
    }
    with pytest.raises(QueryError, match="does not run on Spark: it writes OTLP JSON"):
        ks.run("otlp_spans", spark, both_store)


@pytest.mark.parametrize("name", _on_spark())
def test_spark_answers_as_duckdb(name, spark, both_store):
    import kagura.spark as ks

    assert both_store.tail_size()["settled"] > 0 and both_store.segments()
    for params in _params(name, both_store):
        expected = both_store.run(name, **params)
        got = ks.run(name, spark, both_store, **params)
        assert got.columns == expected.columns, (name, params)
        rows, want = got.rows(), expected.rows()
        if name not in ("child_executions", "trace_executions", "find_execution"):
            assert want, f"{name} returned no rows with {params}: the test proves nothing"
        assert len(rows) == len(want), (name, params)
        for i, (x, y) in enumerate(zip(rows, want, strict=True)):
            assert same(x, y), (
                name,
                params,
                i,
                {k: (x[k], y[k]) for k in x if not same(x[k], y[k])},
            )
        if name == "regressions" and "split" in params:
            # the planted slowdown is found on Spark too, so the rows compared carry a finding
            assert any(r["flagged"] and r["agent_name"] == "summarizer" for r in rows)


def test_glob_becomes_an_anchored_regex():
    import re

    from kagura.spark.translate import glob_regex

    cases = [
        ("summar*", "summarizer", True),
        ("summar*", "xsummarizer", False),
        ("a?c", "abc", True),
        ("a?c", "abbc", False),
        ("a.c", "abc", False),
        ("[ab]x", "bx", True),
        ("[!ab]x", "bx", False),
        ("p_%", "p_%", True),
    ]
    for pattern, text, matches in cases:
        # Java and Python agree on these constructs; \\z is Java's, Python 3.11 spells it \\Z
        regex = glob_regex(pattern).replace("\\z", "\\Z")
        assert bool(re.search(regex, text)) is matches, (pattern, text)


def test_a_file_without_translation_names_the_twin_folder():
    from kagura.observability.errors import QueryError
    from kagura.spark.translate import transpile

    with pytest.raises(QueryError, match="sql/spark/"):
        transpile("SELECT max_by(status, started_at, 3) FROM executions", label="x.sql")
    text = transpile(
        "SELECT quantile_cont(duration, 0.5), epoch(to_timestamp(started_at)), "
        "epoch_ms(to_timestamp(started_at)), agent_name GLOB $agent FROM executions"
    )
    assert "PERCENTILE(" in text and "PERCENTILE_CONT" not in text
    assert "UNIX_MICROS(TIMESTAMP_SECONDS(started_at))" in text
    assert "UNIX_MILLIS(TIMESTAMP_SECONDS(started_at))" in text
    assert "RLIKE :agent__glob" in text and "GLOB" not in text
