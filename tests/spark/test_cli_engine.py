"""`kagura monitor sql NAME --engine spark`: the real CLI in a subprocess, a real Spark in it."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest
from cli_process import run_cli


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout)


def test_summary_on_spark_equals_duckdb(both_store):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime")
    db = str(both_store.path)
    duck = _cli("monitor", "sql", "summary_stats", "--db", db, "--json")
    spark = _cli("monitor", "sql", "summary_stats", "--engine", "spark", "--db", db, "--json")
    assert duck.returncode == 0, duck.stderr
    assert spark.returncode == 0, spark.stderr
    want, got = json.loads(duck.stdout)[0], json.loads(spark.stdout)[0]
    assert got.keys() == want.keys()
    assert got["total_executions"] == 1359  # 1,206 runs in the lake + 153 in the tail
    for key, value in want.items():
        if isinstance(value, float):
            assert math.isclose(got[key], value, rel_tol=1e-9), key
        else:
            assert got[key] == value, key


def test_engine_errors_are_one_line(both_store):
    db = str(both_store.path)
    bad = _cli("monitor", "sql", "summary_stats", "--engine", "presto", "--db", db)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: unknown engine 'presto'; give one of: duckdb, spark"
    adhoc = _cli("monitor", "sql", "SELECT 1", "--engine", "spark", "--db", db)
    assert adhoc.returncode == 2
    assert "named queries" in adhoc.stderr and "Traceback" not in adhoc.stderr
