"""Scores: marks people and evaluators give runs (numeric, boolean or a label), append-only.

A score is one row of the SQLite table `scores`: which run, the score's name,
its kind and value, an optional comment and when it was given. Rows are never
changed or deleted by scoring again: a new score of the same name is a new row,
and readers take the newest one where one value is wanted. Scores stay in the
tail (compaction leaves them), and queries see them as the view `scores`.
"""

from __future__ import annotations

import math
import sqlite3
import time
from typing import Any

import pyarrow as pa

KINDS = ("numeric", "boolean", "label")
MAX_NAME = 200
MAX_LABEL = 1000
MAX_COMMENT = 4000

SCHEMA = pa.schema(
    [
        ("rev", pa.int64()),
        ("execution_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("value", pa.float64()),
        ("label", pa.string()),
        ("comment", pa.string()),
        ("created_at", pa.float64()),
    ]
)


def parse_value(text: str) -> bool | float | str:
    """A command-line VALUE: true/false (yes/no, pass/fail, good/bad), a number, else a label."""
    word = text.strip().lower()
    if word in ("true", "yes", "pass", "good"):
        return True
    if word in ("false", "no", "fail", "bad"):
        return False
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return number


def check(name: Any, value: Any, comment: Any) -> tuple[str, str, float | None, str | None]:
    """(name, kind, value, label) of a score; ValueError saying what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a score needs a name, such as 'helpful' or 'accuracy'")
    if len(name) > MAX_NAME:
        raise ValueError(f"a score name is at most {MAX_NAME} characters")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise ValueError(f"a comment is text of at most {MAX_COMMENT} characters")
    if isinstance(value, bool):
        return name.strip(), "boolean", 1.0 if value else 0.0, None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(
                f"a score must be a finite number, true/false or a label, got {value!r}"
            )
        return name.strip(), "numeric", number, None
    if isinstance(value, str) and value.strip():
        if len(value) > MAX_LABEL:
            raise ValueError(f"a label is at most {MAX_LABEL} characters")
        return name.strip(), "label", None, value.strip()
    raise ValueError(
        f"a score is a number, true/false or a non-empty label, got {type(value).__name__}"
    )


def insert(
    con: sqlite3.Connection,
    execution_id: str,
    name: str,
    kind: str,
    value: float | None,
    label: str | None,
    comment: str | None,
) -> dict[str, Any]:
    """Append one score row (inside a write transaction); returns it as a dict."""
    at = time.time()
    cur = con.execute(
        "INSERT INTO scores (execution_id, name, kind, value, label, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (execution_id, name, kind, value, label, comment, at),
    )
    return as_dict(
        {
            "rev": cur.lastrowid,
            "execution_id": execution_id,
            "name": name,
            "kind": kind,
            "value": value,
            "label": label,
            "comment": comment,
            "created_at": at,
        }
    )


def as_dict(row: dict[str, Any]) -> dict[str, Any]:
    """The public score dict: the row, with `value` as the caller gave it (bool, number or label)."""
    kind = row["kind"]
    if kind == "boolean":
        shown: Any = bool(row["value"])
    elif kind == "label":
        shown = row["label"]
    else:
        shown = row["value"]
    return {
        "execution_id": row["execution_id"],
        "name": row["name"],
        "kind": kind,
        "value": shown,
        "comment": row["comment"],
        "created_at": row["created_at"],
    }


def read_table(con: sqlite3.Connection) -> pa.Table:
    """Every score row as Arrow (the `scores` view)."""
    rows = con.execute(f"SELECT {', '.join(SCHEMA.names)} FROM scores ORDER BY rev").fetchall()
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in SCHEMA.names]
    return pa.Table.from_arrays(
        [pa.array(list(c), f.type) for c, f in zip(columns, SCHEMA, strict=True)], schema=SCHEMA
    )


def of_execution(con: sqlite3.Connection, execution_id: str) -> list[dict[str, Any]]:
    """The scores of one run, oldest first."""
    cur = con.execute(
        f"SELECT {', '.join(SCHEMA.names)} FROM scores WHERE execution_id = ? ORDER BY rev",
        (execution_id,),
    )
    return [as_dict(dict(zip(SCHEMA.names, r, strict=True))) for r in cur.fetchall()]
