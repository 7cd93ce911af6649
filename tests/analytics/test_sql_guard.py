"""EventStore.sql(): one read-only SELECT over the views, refused otherwise with a clear message."""

from __future__ import annotations

import pytest
from analytics_rows import llm, run

from kagura.observability.errors import QueryError

NOW = 1_749_729_600.0


@pytest.fixture
def store(make_store):
    r1, r2 = run("a", NOW, cost=0.5), run("b", NOW + 1, cost=0.25)
    return make_store([(r1, [llm(r1, 0, NOW, "m", 0.5)]), (r2, [])])


def test_a_select_reads_the_views(store):
    rows = store.sql("SELECT agent_name, total_cost FROM executions ORDER BY agent_name").rows()
    assert rows == [{"agent_name": "a", "total_cost": 0.5}, {"agent_name": "b", "total_cost": 0.25}]
    joined = store.sql(
        "WITH calls AS (SELECT execution_id, count(*) AS n FROM events GROUP BY 1) "
        "SELECT e.agent_name, coalesce(c.n, 0) AS n FROM executions e "
        "LEFT JOIN calls c ON c.execution_id = e.id ORDER BY 1"
    ).rows()
    assert joined == [{"agent_name": "a", "n": 1}, {"agent_name": "b", "n": 0}]


def test_scores_are_a_view_too(store):
    """Ad-hoc SQL joins scores with their runs; DESCRIBE shows the view's columns."""
    first = store.sql("SELECT id FROM executions WHERE agent_name = 'a'").one()["id"]
    second = store.sql("SELECT id FROM executions WHERE agent_name = 'b'").one()["id"]
    store.score(first, "helpful", 0.25)
    store.score(first, "helpful", 0.75, comment="second look")
    store.score(second, "tone", "friendly")
    got = store.sql(
        "SELECT e.agent_name, avg(s.value) AS mean, count(*) AS n FROM scores s "
        "JOIN executions e ON e.id = s.execution_id WHERE s.kind = 'numeric' GROUP BY 1"
    ).rows()
    assert got == [{"agent_name": "a", "mean": 0.5, "n": 2}]
    labels = store.sql("SELECT label, comment FROM scores WHERE kind = 'label'").rows()
    assert labels == [{"label": "friendly", "comment": None}]
    columns = {r["column_name"] for r in store.sql("DESCRIBE scores").rows()}
    assert {"execution_id", "name", "kind", "value", "label", "comment", "created_at"} <= columns


def test_params_bind_by_name(store):
    got = store.sql("SELECT count(*) AS n FROM executions WHERE total_cost > $min", min=0.3)
    assert got.rows() == [{"n": 1}]
    assert store.sql("FROM executions SELECT agent_name WHERE agent_name = $a", a="b").rows() == [
        {"agent_name": "b"}
    ]


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1; SELECT 2",
        "SELECT * FROM range(3) t(x) WHERE x IN (SELECT 1)",
        "DESCRIBE executions",
        "SELECT x FROM unnest([1, 2]) t(x)",
        "SELECT * FROM executions, LATERAL (SELECT 1) s(x) LIMIT 1",
        "(SELECT agent_name FROM executions) UNION ALL (SELECT name FROM events)",
    ],
)
def test_other_reads_are_allowed(store, text):
    if text.count(";") == 1:
        with pytest.raises(QueryError, match="exactly one statement"):
            store.sql(text)
    else:
        store.sql(text).rows()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("CREATE TABLE t AS SELECT 1", "CREATE statement"),
        ("DROP VIEW executions", "DROP statement"),
        ("INSERT INTO executions (id) VALUES ('x')", "INSERT statement"),
        ("UPDATE executions SET total_cost = 0", "UPDATE statement"),
        ("DELETE FROM executions", "DELETE statement"),
        ("ATTACH 'other.db' AS other", "ATTACH statement"),
        ("DETACH other", "DETACH statement"),
        ("COPY executions TO 'out.csv'", "COPY statement"),
        ("COPY (SELECT 1) TO 'out.csv'", "COPY statement"),
        ("INSTALL sqlite", "LOAD statement"),
        ("LOAD sqlite", "LOAD statement"),
        ("PRAGMA version", "PRAGMA statement"),
        ("SET threads = 1", "SET statement"),
        ("RESET threads", "statement"),
        ("EXPORT DATABASE 'somewhere'", "EXPORT statement"),
        ("IMPORT DATABASE 'somewhere'", "statement"),
        ("CALL pragma_version()", "CALL statement"),
        ("CHECKPOINT", "statement"),
        ("BEGIN TRANSACTION", "TRANSACTION statement"),
        ("EXPLAIN SELECT 1", "EXPLAIN statement"),
        ("SELECT 1; DROP VIEW executions", "exactly one statement"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT * FROM read_parquet('x.parquet')", "read_parquet"),
        ("SELECT * FROM read_text('/etc/hostname')", "read_text"),
        ("SELECT * FROM read_blob('/etc/hostname')", "read_blob"),
        ("SELECT * FROM read_json('x.json')", "read_json"),
        ("SELECT * FROM glob('/etc/*')", "glob"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
        ("SELECT * FROM executions WHERE id IN (SELECT * FROM glob('/tmp/*'))", "glob"),
        ("SELECT * FROM '/etc/passwd'", "not a view"),
        ("SELECT * FROM 'data.csv'", "not a view"),
        ("SELECT * FROM _kagura_tail_executions", "not a view"),
        ("SELECT * FROM main.executions", "unqualified"),
        ("SELECT * FROM nowhere", "not a view"),
        ("SELECT current_setting('threads')", "current_setting"),
        ("SELECT getvariable('x')", "getvariable"),
        ("SHOW TABLES", "SHOW and DESCRIBE"),
        ("", "empty query"),
        ("   ", "empty query"),
        ("SELEC 1", "does not parse"),
    ],
)
def test_anything_but_a_read_is_refused(store, text, reason):
    with pytest.raises(QueryError, match=reason):
        store.sql(text)
    # Nothing changed.
    assert store.sql("SELECT count(*) AS n FROM executions").rows() == [{"n": 2}]


def test_a_cte_named_like_a_file_does_not_open_the_file(store):
    with pytest.raises(QueryError, match="not a view"):
        store.sql("WITH x AS (SELECT 1) SELECT * FROM 'x.csv'")
    assert store.sql(
        "WITH recent AS (SELECT * FROM executions) SELECT count(*) AS n FROM recent"
    ).rows() == [{"n": 2}]


def test_the_catalogue_lists_every_sql_file(store):
    names = [entry["name"] for entry in store.catalogue()]
    for name in (
        "regressions",
        "agent_health",
        "budget_status",
        "error_groups",
        "latency_percentiles",
        "model_latency",
        "cost_by_model",
        "cost_trend",
        "cost_by_date",
        "summary_stats",
    ):
        assert name in names
    entry = next(e for e in store.catalogue() if e["name"] == "budget_status")
    assert entry["grain"] == "one row" and "daily" in entry["params"]
