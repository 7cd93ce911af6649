"""`kagura monitor sql NAME --engine spark`: a catalogue file run on Apache Spark.

The session's master is KAGURA_SPARK_MASTER (default local[2]); the same command
runs on a cluster when it names one. pyspark is imported only here, on demand.
"""

from __future__ import annotations

from typing import Any

from kagura.cli.options import UsageError

ENGINES = ("duckdb", "spark")


def check_engine(engine: str) -> str:
    """The engine name, lower-cased; UsageError for an unknown one."""
    name = (engine or "").strip().lower()
    if name not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; give one of: {', '.join(ENGINES)}")
    return name


def run_named(lake: Any, name: str, params: dict[str, Any]):
    """Run catalogue file `name` with `params` on Spark over `lake` (a store); its Result."""
    import kagura.spark as ks

    session = ks.session()
    try:
        return ks.run(name, session, lake, **params)
    finally:
        session.stop()
