"""One name per analytic, one Result shape: the rule of docs/python-api.md, checked over the whole catalogue.

Every `sql/NAME.sql` is one method `EventStore.NAME` returning a Result; every
method of the catalogue is a SQL file's name, an older name kept in ALIASES, or
one of the two methods about the catalogue; the older names keep the shapes
they had (a Polars frame, a list of dicts), and the documented ways of reading
an analytic (rows as dicts, a frame's methods, a one-row answer as a dict) work.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from analytics_rows import run

from kagura.observability.analytics import catalogue as analytics
from kagura.observability.eventstore import EventStore
from kagura.observability.store.engine import Result, Row

ROOT = Path(__file__).resolve().parents[2]
STEMS = sorted(p.stem for p in (ROOT / "sql").glob("*.sql"))
T0 = 1_749_729_600.0  # 2025-06-12 12:00 UTC
# The arguments a method needs besides its defaults (the rest take none).
NEEDS = {
    "find_execution": ("exec_",),
    "child_executions": ("exec_x",),
    "trace_executions": ("exec_x",),
    "search": ("hello",),
}


def public_methods(cls) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.fixture
def store(make_store):
    return make_store(
        [
            run("a", T0, cost=0.25),
            run("a", T0 + 60, status="failed", error="boom 1", error_type="ValueError"),
            run("b", T0 + 120, cost=0.5),
        ]
    )


def test_every_sql_file_is_one_method_of_its_name_returning_a_result(store):
    methods = public_methods(EventStore)
    for stem in STEMS:
        assert stem in methods, f"sql/{stem}.sql has no method EventStore.{stem}"
        assert f"sql/{stem}.sql" in (methods[stem].__doc__ or ""), (
            f"EventStore.{stem}'s docstring does not name sql/{stem}.sql"
        )
        answer = getattr(store, stem)(*NEEDS.get(stem, ()))
        if stem in analytics.PLAIN:
            continue
        assert isinstance(answer, Result), f"EventStore.{stem} returned {type(answer).__name__}"
        assert answer.name == f"sql/{stem}.sql" or answer.name == f"sql/rollups/{stem}.sql"


def test_every_method_of_the_catalogue_is_a_sql_file_an_older_name_or_about_the_catalogue():
    for name in public_methods(analytics.Analytics):
        assert name in STEMS or name in analytics.ALIASES or name in analytics.NOT_ANALYTICS, (
            f"Analytics.{name} is no SQL file's name: add sql/{name}.sql or list it"
        )
    for alias, (stem, shape) in analytics.ALIASES.items():
        assert stem in STEMS and shape in ("pl", "rows"), alias


def test_every_older_name_keeps_its_shape_and_answers_as_its_analytic(store):
    for alias, (stem, shape) in analytics.ALIASES.items():
        # The same moment for both calls of an analytic that judges as of now.
        at = (
            {"now": T0 + 200}
            if "now" in inspect.signature(getattr(store, alias)).parameters
            else {}
        )
        old = getattr(store, alias)(**at)
        new = getattr(store, stem)(**at)
        if shape == "pl":
            assert isinstance(old, pl.DataFrame), alias
            assert old.to_dicts() == new.rows(), alias
        else:
            assert isinstance(old, list) and all(isinstance(r, dict) for r in old), alias
            assert old == new.rows(), alias


def test_the_documented_readings_of_an_analytic(store):
    # docs/tutorial.md: agent_health() rows as dicts; cost_trend() as a Polars frame;
    # budget_status() as a dict.
    health = {row["agent_name"]: row["considered"] for row in store.agent_health(now=T0 + 200)}
    assert health == {"a": 2, "b": 1}
    trend = store.cost_trend(since=T0 - 86400, until=T0 + 86400)
    assert isinstance(trend.tail(3), pl.DataFrame)
    assert trend["cost"].sum() == pytest.approx(0.75)
    by_agent = store.cost_by_agent()
    assert by_agent.sort("cost")["agent_name"].to_list() == ["a", "b"]
    status = store.budget_status(daily=0.5, now=T0 + 200)
    assert isinstance(status, Row)
    assert status["daily_budget"] == 0.5 and dict(status)["daily_budget"] == 0.5
    assert {k: status[k] for k in ("today_runs",)} == {"today_runs": 3}


def test_a_result_reads_as_row_dicts_and_as_a_frame():
    table = pa.table({"agent_name": ["a", "b", "c"], "cost": [0.5, None, 2.0]})
    result = Result(table, "sql/x.sql")
    assert len(result) == 3 and result.columns == ["agent_name", "cost"]
    assert list(result) == [
        {"agent_name": "a", "cost": 0.5},
        {"agent_name": "b", "cost": None},
        {"agent_name": "c", "cost": 2.0},
    ]
    assert result[1] == {"agent_name": "b", "cost": None}
    assert result[-1]["agent_name"] == "c" and len(result[:2]) == 2
    assert result == result.rows() and result == Result(table)
    assert result != [{"agent_name": "a", "cost": 0.5}]
    assert result["cost"].sum() == 2.5  # a Polars column: nulls skipped
    assert result.sort("agent_name", descending=True)["agent_name"].to_list() == ["c", "b", "a"]
    assert result.filter(pl.col("cost") > 1).height == 1
    assert result.arrow() is table
    assert bool(Result(table.slice(0, 0))) is False
    result.rows()[0]["cost"] = 99.0  # rows() hands out new dicts each call
    assert result[0]["cost"] == 0.5
    with pytest.raises(AttributeError):
        result.no_such_method  # noqa: B018


def test_a_row_reads_as_the_dict_of_its_one_row():
    row = Row(pa.table({"today_cost": [1.25], "method": ["mean"]}), "sql/x.sql")
    assert row["today_cost"] == 1.25 and row.get("missing") is None
    assert dict(row) == {"today_cost": 1.25, "method": "mean"} == row
    assert list(row) == ["today_cost", "method"] and "method" in row
    assert row.rows() == [{"today_cost": 1.25, "method": "mean"}]
    assert row.pl().shape == (1, 2)
    with pytest.raises(KeyError):
        row["missing"]
    from kagura.observability.errors import QueryError

    with pytest.raises(QueryError, match="returned 0 rows, not one"):
        Row(pa.table({"a": pa.array([], pa.int64())}), "sql/x.sql")


def test_each_command_answers_to_the_name_of_the_analytic_it_shows():
    import typer

    from kagura.cli import app
    from kagura.cli.monitor import ANALYTIC_COMMANDS, monitor_app

    bodies = {
        info.name or info.callback.__name__: info.callback
        for info in monitor_app.registered_commands
    }
    monitor = typer.main.get_command(app).commands["monitor"].commands
    for command, stem in ANALYTIC_COMMANDS.items():
        assert stem in STEMS and stem in public_methods(EventStore), stem
        assert bodies[stem] is bodies[command], (command, stem)
        assert monitor[stem].hidden and not monitor[command].hidden
        assert {p.name for p in monitor[stem].params} == {p.name for p in monitor[command].params}
