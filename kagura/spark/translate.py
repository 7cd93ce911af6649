"""The sql/ catalogue in Spark SQL: DuckDB files transpiled by sqlglot, with fixes.

sqlglot turns most of our DuckDB SQL into Spark SQL, but a few functions come out
wrong, so they are rewritten on the syntax tree before Spark SQL is generated:
`quantile_cont(x, p)` becomes Spark's exact `percentile(x, p)` (sqlglot writes
PERCENTILE_CONT, which Spark rejects); `epoch(ts)` keeps its fraction of a second
(sqlglot writes UNIX_TIMESTAMP, whole seconds); `to_timestamp(x)` becomes
`timestamp_seconds(x)`; `epoch_ms(ts)` / `epoch_us(ts)` become `unix_millis` /
`unix_micros`; `x GLOB $p` becomes `x RLIKE $p__glob`, a regular expression the
runner derives from the glob and binds as one more parameter (values never enter
SQL text). A file that cannot be carried over this way has a Spark twin,
`sql/spark/NAME.sql`, written by hand to return the same rows.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from kagura.observability.errors import QueryError
from kagura.observability.store.engine import load_sql, sql_dir

# Catalogue files not offered on Spark, and why.
NOT_ON_SPARK = {
    "otlp_spans": "it writes OTLP JSON text for `kagura monitor export` (DuckDB's to_json of "
    "strings has no Spark equivalent); export from DuckDB",
}

# The suffix of a derived parameter holding a glob pattern as a Java regular expression.
GLOB_SUFFIX = "__glob"


def twin_dir() -> Path:
    """The folder of hand-written Spark twins of catalogue files."""
    return sql_dir() / "spark"


def twins() -> list[str]:
    """The names of the catalogue files that have a Spark twin."""
    folder = twin_dir()
    return sorted(p.stem for p in folder.glob("*.sql")) if folder.is_dir() else []


@cache
def spark_sql(name: str) -> str:
    """The Spark SQL text of catalogue file `name`: its twin, or the transpiled file."""
    text = load_sql(name)  # checks the name and that the DuckDB file exists
    if name in NOT_ON_SPARK:
        raise QueryError(f"sql/{name}.sql does not run on Spark: {NOT_ON_SPARK[name]}")
    twin = twin_dir() / f"{name}.sql"
    if twin.is_file():
        return twin.read_text(encoding="utf-8")
    return transpile(text, label=f"sql/{name}.sql")


def transpile(text: str, label: str = "query") -> str:
    """DuckDB SQL `text` as Spark SQL (sqlglot plus the fixes above); QueryError if it can't be."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(text, read="duckdb")
        # Children before parents, so a rewritten node's arguments are rewritten already.
        for node in reversed(list(tree.walk(bfs=False))):
            new = _fix(node)
            if new is not node:
                node.replace(new)
        return tree.sql(dialect="spark", pretty=True, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except (SqlglotError, _Untranslatable) as exc:
        raise QueryError(
            f"{label} has no Spark translation ({str(exc).splitlines()[0]}); "
            f"write a Spark twin in sql/spark/"
        ) from exc


class _Untranslatable(Exception):
    """A construct that has no faithful Spark equivalent."""


def _fix(node):
    from sqlglot import exp

    if isinstance(node, exp.PercentileCont) and not isinstance(node.parent, exp.WithinGroup):
        if node.args.get("expression") is None:
            raise _Untranslatable("percentile_cont WITHIN GROUP would become approximate")
        return exp.Anonymous(
            this="PERCENTILE", expressions=[node.this.copy(), node.expression.copy()]
        )
    if isinstance(node, exp.WithinGroup):
        raise _Untranslatable("ordered-set aggregate (WITHIN GROUP) would become approximate")
    if isinstance(node, exp.TimeToUnix):
        # epoch(ts): seconds with their fraction, as DuckDB returns them
        micros = exp.Anonymous(this="UNIX_MICROS", expressions=[node.this.copy()])
        return exp.Div(this=micros, expression=exp.Literal.number("1000000"))
    if isinstance(node, exp.UnixToTime):
        scale = node.args.get("scale")
        value = node.this.copy()
        if scale is None:
            return exp.Anonymous(this="TIMESTAMP_SECONDS", expressions=[value])
        digits = scale.name if isinstance(scale, exp.Literal) else str(scale)
        # DuckDB's epoch_ms(x) turns a number into a timestamp and a timestamp into a number.
        if _is_timestamp(node.this):
            fn = {"3": "UNIX_MILLIS", "6": "UNIX_MICROS"}.get(digits)
        else:
            fn = {"3": "TIMESTAMP_MILLIS", "6": "TIMESTAMP_MICROS"}.get(digits)
        if fn is None:
            raise _Untranslatable(f"a timestamp of scale {digits}")
        return exp.Anonymous(this=fn, expressions=[value])
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
        return exp.Anonymous(this="UNIX_MICROS", expressions=[e.copy() for e in node.expressions])
    if isinstance(node, exp.Glob):
        pattern = node.expression
        if isinstance(pattern, exp.Placeholder):
            regex = exp.Placeholder(this=pattern.name + GLOB_SUFFIX)
        elif isinstance(pattern, exp.Literal) and pattern.is_string:
            regex = exp.Literal.string(glob_regex(pattern.this))
        else:
            raise _Untranslatable("GLOB with a computed pattern")
        return exp.RegexpLike(this=node.this.copy(), expression=regex)
    if isinstance(node, exp.RegexpReplace):
        replacement = node.args.get("replacement")
        if isinstance(replacement, exp.Literal) and replacement.is_string:
            node.set("replacement", exp.Literal.string(java_replacement(replacement.this)))
        return node
    if (
        isinstance(node, exp.Literal)
        and not node.is_string
        and "." in node.this
        and "e" not in node.this.lower()
        and not isinstance(node.parent, exp.Interval | exp.DataTypeParam)
    ):
        # 100.0 is a DECIMAL in Spark, whose arithmetic stays DECIMAL; DuckDB's gives DOUBLE.
        return exp.Literal.number(node.this + "D")
    if isinstance(node, exp.ArgMax | exp.ArgMin) and node.args.get("count") is not None:
        raise _Untranslatable("max_by/min_by with a count (the top N as a list)")
    return node


def _is_timestamp(node) -> bool:
    from sqlglot import exp

    if isinstance(node, exp.Cast):
        return node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
    return isinstance(
        node,
        exp.UnixToTime
        | exp.CurrentTimestamp
        | exp.TimestampTrunc
        | exp.DateTrunc
        | exp.StrToTime
        | exp.TimeStrToTime,
    ) or (
        isinstance(node, exp.Anonymous)
        and node.name.lower()
        in ("now", "to_timestamp", "timestamp_seconds", "timestamp_millis", "timestamp_micros")
    )


def glob_regex(pattern: str) -> str:
    """A Java regular expression that matches what DuckDB's GLOB `pattern` matches (whole string)."""
    out = ["(?s)^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                chars = "".join("\\" + ch if ch in "\\[]^&" else ch for ch in body)
                out.append(f"[{'^' if negate else ''}{chars}]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(_java_escape(pattern[i]))
        else:
            out.append(_java_escape(c))
        i += 1
    out.append("\\z")
    return "".join(out)


def java_replacement(text: str) -> str:
    """A DuckDB (RE2) replacement string for Java: `\\1` becomes `$1`, a literal `$` is escaped."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("$" + nxt if nxt.isdigit() else "\\" + nxt)
            i += 2
            continue
        out.append("\\$" if c == "$" else c)
        i += 1
    return "".join(out)


def _java_escape(ch: str) -> str:
    return "\\" + ch if ch in r"\^$.|?*+()[]{}" else ch


def glob_params(text: str) -> list[str]:
    """The parameters that Spark SQL `text` uses as glob patterns (each needs NAME__glob bound)."""
    return sorted(set(re.findall(r":([A-Za-z_][A-Za-z0-9_]*)" + GLOB_SUFFIX + r"\b", text)))
