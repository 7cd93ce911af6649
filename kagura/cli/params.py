"""`--param NAME=VALUE` and `--at`: what a command line says, checked before DuckDB sees it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from kagura.cli.options import (
    MAX_LIMIT,
    UsageError,
    parse_span,
    parse_time,
)


def parse_at(value: str | None) -> float:
    """The time a judgement is made at: --at, else now."""
    at = parse_time(value, "--at")
    return time.time() if at is None else at


QUERY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_PARAMS = {"since", "until", "now", "split"}


def parse_param(text: str) -> tuple[str, Any]:
    """(name, value) of one --param NAME=VALUE: times, numbers, true/false/null, JSON lists, text."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not QUERY_NAME.match(name):
        raise UsageError(f"--param {text!r}: write NAME=VALUE, e.g. --param since=7d")
    value = raw.strip()
    if name in _TIME_PARAMS and value.lower() not in ("", "null", "none"):
        return name, parse_time(value, f"--param {name}", end_of_day=name == "until")
    lowered = value.lower()
    if lowered in ("null", "none", ""):
        return name, None
    if lowered in ("true", "false"):
        return name, lowered == "true"
    if re.fullmatch(r"-?\d+", value):
        return name, int(value)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", value):
        return name, float(value)
    if value.startswith("["):
        try:
            return name, json.loads(value)
        except ValueError:
            raise UsageError(f"--param {name}: {value!r} is not a JSON list") from None
    return name, value


# The kinds of the params of the named queries, checked before DuckDB sees them.
_WHOLE_PARAMS = {"limit", "last", "min_runs", "recent_runs", "baseline_runs", "window"}
_BOOL_PARAMS = {"per_day"}
_FRACTION_PARAMS = {"degraded", "unhealthy", "min_failure_change", "alpha"}
_NON_NEGATIVE_PARAMS = {"min_change", "daily", "monthly"}
_SPAN_PARAMS = {"silent_after", "days", "silent_factor"}
_REQUIRED_PARAMS = {
    "trace_executions": ("trace",),
    "child_executions": ("parent",),
    "find_execution": ("prefix",),
}


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` for sql/NAME.sql with spans read, or a UsageError naming the bad one."""
    missing = [p for p in _REQUIRED_PARAMS.get(name, ()) if params.get(p) is None]
    if missing:
        raise UsageError(f"{name} needs --param {missing[0]}=VALUE")
    checked = dict(params)
    for key, value in params.items():
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in _BOOL_PARAMS and not isinstance(value, bool):
            raise UsageError(f"--param {key}={value}: give true or false")
        if key in _WHOLE_PARAMS and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise UsageError(f"--param {key}={value}: give a whole number of at least 1")
        if key in _WHOLE_PARAMS and value > MAX_LIMIT:
            raise UsageError(f"--param {key}={value}: give at most {MAX_LIMIT:,}")
        if key in _FRACTION_PARAMS and not (number and 0 <= value <= 1):
            raise UsageError(f"--param {key}={value}: give a number between 0 and 1")
        if key in _NON_NEGATIVE_PARAMS and not (number and value >= 0):
            raise UsageError(f"--param {key}={value}: give a number of at least 0")
        if key in _SPAN_PARAMS:
            if key == "silent_after" and isinstance(value, str):
                value = checked[key] = parse_span(value, f"--param {key}")
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise UsageError(f"--param {key}={value}: give a positive number")
    return checked
