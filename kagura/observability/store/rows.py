"""The row shapes of executions and events, and how ids are made.

An execution is one agent run; an event is one thing it did (an LLM call, a
tool call, a memory operation, a custom event). Rows are flat dicts whose
values are str, int, float or None; free-form payloads are JSON text. This
module also converts between rows and the execution dict of Kagura's public
API (`{id, agent_name, ..., events: [...], metrics: {...}}`).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import time
from typing import Any, Literal, overload

from kagura.observability import timespec

# (name, kind): kind is one of text, real, int, json. The order is the order of
# the SQLite columns, the Arrow schemas and the Parquet files.
EXECUTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("trace_id", "text"),
    ("parent_id", "text"),
    ("agent_name", "text"),
    ("started_at", "real"),
    ("ended_at", "real"),
    ("duration", "real"),
    ("status", "text"),
    ("error", "text"),
    ("error_type", "text"),
    ("kwargs", "json"),
    ("tags", "json"),
    ("model", "text"),
    ("total_cost", "real"),
    ("total_tokens", "int"),
    ("prompt_tokens", "int"),
    ("completion_tokens", "int"),
    ("llm_calls", "int"),
    ("tool_calls", "int"),
    ("unpriced_calls", "int"),
    ("metrics", "json"),
    ("host", "text"),
    ("pid", "int"),
    # Appended by migration 3: who and what the run belongs to (kagura.context).
    ("session_id", "text"),
    ("user_id", "text"),
    ("metadata", "json"),
)

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("execution_id", "text"),
    ("seq", "int"),
    ("type", "text"),
    ("name", "text"),
    ("started_at", "real"),
    ("duration", "real"),
    ("prompt_tokens", "int"),
    ("completion_tokens", "int"),
    ("total_tokens", "int"),
    ("cost", "real"),
    ("status", "text"),
    ("error", "text"),
    ("data", "json"),
)

EXECUTION_NAMES = tuple(name for name, _ in EXECUTION_COLUMNS)
EVENT_NAMES = tuple(name for name, _ in EVENT_COLUMNS)

STATUSES = ("running", "completed", "failed", "cancelled", "abandoned")
SETTLED = ("completed", "failed", "cancelled", "abandoned")
EVENT_TYPES = ("llm_call", "tool_call", "memory_operation", "custom")
# Event types whose public dict carries the call's keyword arguments as data["kwargs"].
_KWARGS_TYPES = ("tool_call", "memory_operation")

# Metric keys that have their own execution column.
TYPED_METRICS = (
    "total_cost",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "llm_calls",
    "tool_calls",
    "unpriced_calls",
)

# Event fields that have their own event column (the rest go to `data`).
TYPED_EVENT_FIELDS = (
    "name",
    "duration",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "status",
    "error",
)

HOST = socket.gethostname()


# The random part of ids: a generator per process, seeded from os.urandom at import
# and again in every forked child (a child must not repeat its parent's ids). Not
# os.urandom per id: that system call releases the GIL, and under load a recording
# call then waits for other threads to give it back.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def new_execution_id(at: float | None = None) -> str:
    """A fresh execution id: `exec_`, 12 hex digits of milliseconds, 64 random bits.

    Time first, so ids sort by start time and a lookup by id reads only the
    lake files of that moment; 64 random bits, so ids never collide.
    """
    millis = int((time.time() if at is None else at) * 1000)
    return f"exec_{millis & 0xFFFFFFFFFFFF:012x}{_ids.getrandbits(64):016x}"


def new_trace_id() -> str:
    """A fresh trace id in the same form as an execution id (a root run's trace id is its own id)."""
    return new_execution_id()


def id_time_range(prefix: str) -> tuple[float, float] | None:
    """The span of start times an execution id (or id prefix) can have; None if it has no time part."""
    if not prefix.startswith("exec_"):
        return None
    digits = prefix[5:17]
    if not digits or any(c not in "0123456789abcdef" for c in digits):
        return None
    low = int(digits.ljust(12, "0"), 16) / 1000
    high = (int(digits.ljust(12, "f"), 16) + 1) / 1000
    return low, high


MAX_DEPTH = 64  # nesting kept in stored JSON; deeper values are stored as "<too deep>"
MAX_INT = 2**63 - 1  # SQLite's and Parquet's integers are 64 bits
MIN_TIME, MAX_TIME = timespec.MIN_TIME, timespec.MAX_TIME  # years 1 to 9999
_INF = math.inf


def to_json(value: Any, *, cleaned: bool = False) -> str | None:
    """JSON text for `value`; what JSON can't hold is stored as its repr.

    `cleaned=True` says `value` came out of the redactor (string keys, bounded
    depth, no cycles): it is dumped directly, and only values the JSON encoder
    refuses (NaN, infinities) or whose text has a 19-digit run (an integer that may
    not fit 64 bits) take the general path.
    """
    if value is None:
        return None
    if cleaned:
        try:
            text = _dumps(value)
        except (TypeError, ValueError, RecursionError):
            pass
        else:
            if _LONG_DIGITS.search(text) is None and _utf8(text):
                return text
    plain = _jsonable(value, set(), 0)
    text = json.dumps(plain, ensure_ascii=False, allow_nan=False)
    if not _utf8(text):
        # Lone surrogates (from undecodable file names, say) can't be UTF-8: escape them.
        text = json.dumps(plain, ensure_ascii=True, allow_nan=False)
    return text


_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(value: Any) -> str:
    """`value` as text that UTF-8 can hold (lone surrogates become \\udcff escapes)."""
    text = value if type(value) is str else str(value)
    if text.isascii() or _utf8(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(value: Any, seen: set[int], depth: int) -> Any:
    """A copy of `value` that JSON can hold: cycles, NaN, huge ints and objects become text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value if -MAX_INT <= value <= MAX_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if id(value) in seen:
            return "<cycle>"
        if depth >= MAX_DEPTH:
            return "<too deep>"
        seen = seen | {id(value)}
        if isinstance(value, dict):
            return {str(k): _jsonable(v, seen, depth + 1) for k, v in value.items()}
        return [_jsonable(v, seen, depth + 1) for v in value]
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not lose the run
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"


def from_json(text: str | None, default: Any = None) -> Any:
    """The value of JSON `text`; `default` for None or text that is not JSON."""
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


@overload
def finite(value: Any, field: str, *, allow_none: Literal[False]) -> float: ...
@overload
def finite(value: Any, field: str, *, allow_none: bool = True) -> float | None: ...
def finite(value: Any, field: str, *, allow_none: bool = True) -> float | None:
    """`value` as a finite float; None stays None; NaN, inf and non-numbers raise."""
    if type(value) is float and -_INF < value < _INF:  # NaN fails both comparisons
        return value
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{field} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{field} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    return number


def moment(value: Any, field: str, *, allow_none: bool = True) -> float | None:
    """`value` as epoch seconds within years 1 to 9999; None stays None."""
    if type(value) is float and MIN_TIME <= value <= MAX_TIME:
        return value
    number = finite(value, field, allow_none=allow_none)
    if number is not None and not MIN_TIME <= number <= MAX_TIME:
        raise ValueError(f"{field} must be a time between the years 1 and 9999, got {value!r}")
    return number


def count(value: Any, field: str) -> int | None:
    """`value` as a non-negative int; None stays None."""
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a whole number, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{field} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{field} must not be negative, got {value!r}")
    if value > MAX_INT:
        raise ValueError(f"{field} is too large for a 64-bit integer, got {value!r}")
    return int(value)


def check_status(status: Any) -> str:
    """`status` if it is one of STATUSES, else ValueError naming the allowed ones."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of: {', '.join(STATUSES)}")
    return status


_EXECUTION_SET = frozenset(EXECUTION_NAMES)
_EXECUTION_COUNTS = tuple(m for m in TYPED_METRICS if m != "total_cost")  # the integer ones
_EXECUTION_TEXTS = (
    "trace_id",
    "error",
    "error_type",
    "parent_id",
    "model",
    "host",
    "session_id",
    "user_id",
)
_TYPED_EVENT_SET = frozenset(TYPED_EVENT_FIELDS)
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def execution_row(**fields: Any) -> dict[str, Any]:
    """A complete, validated execution row from keyword fields.

    Required: id, agent_name, started_at, status. Missing counters are 0,
    missing host and pid are this process's.
    """
    for name in ("id", "agent_name", "started_at", "status"):
        if fields.get(name) is None:
            raise ValueError(f"execution is missing required field {name!r}")
    if not _EXECUTION_SET.issuperset(fields):
        unknown = set(fields) - _EXECUTION_SET
        raise ValueError(f"unknown execution fields: {', '.join(sorted(unknown))}")
    row: dict[str, Any] = dict.fromkeys(EXECUTION_NAMES)
    row.update(fields)
    for name in ("id", "agent_name"):
        if not isinstance(row[name], str) or not row[name]:
            raise ValueError(f"{name} must be a non-empty string")
        row[name] = clean_text(row[name])
    row["trace_id"] = row["trace_id"] or row["id"]
    row["status"] = check_status(row["status"])
    row["started_at"] = moment(row["started_at"], "started_at", allow_none=False)
    row["ended_at"] = moment(row["ended_at"], "ended_at")
    duration = row["duration"] = finite(row["duration"], "duration")
    if duration is not None and duration < 0:
        raise ValueError(f"duration must not be negative, got {duration!r}")
    if duration is None and row["ended_at"] is not None:
        row["duration"] = max(0.0, row["ended_at"] - row["started_at"])
    cost = finite(row["total_cost"], "total_cost")
    if cost is not None and cost < 0:
        raise ValueError(f"total_cost must not be negative, got {cost!r}")
    row["total_cost"] = cost
    for name in _EXECUTION_COUNTS:
        row[name] = count(row[name], name) or 0
    for name in ("kwargs", "tags", "metrics", "metadata"):
        if row[name] is not None and not isinstance(row[name], str):
            row[name] = to_json(row[name])
    for name in _EXECUTION_TEXTS:
        if row[name] is not None:
            row[name] = clean_text(row[name])
    row["host"] = row["host"] or HOST
    row["pid"] = count(row["pid"], "pid") if row["pid"] is not None else _pid
    return row


def event_row(
    execution_id: str, seq: int, type: str, started_at: float, **fields: Any
) -> dict[str, Any]:
    """A complete, validated event row. Fields without a column go to `data`."""
    return build_event_row(execution_id, seq, type, started_at, fields)


def build_event_row(
    execution_id: str,
    seq: int,
    type: str,
    started_at: float,
    fields: dict[str, Any],
    *,
    cleaned: bool = False,
) -> dict[str, Any]:
    """`event_row` with its fields as a dict (not modified); `cleaned`: see `to_json`."""
    if not isinstance(type, str) or not type:
        raise ValueError("event type must be a non-empty string")
    if not isinstance(execution_id, str) or not execution_id:
        raise ValueError("event execution_id must be a non-empty string")
    row: dict[str, Any] = dict.fromkeys(EVENT_NAMES)
    row["execution_id"] = clean_text(execution_id)
    row["seq"] = count(seq, "event seq")
    row["type"] = clean_text(type)
    row["started_at"] = moment(started_at, "event started_at", allow_none=False)
    given = fields.get("data")
    data = dict(given) if given else {}
    for name, value in fields.items():
        if name in _TYPED_EVENT_SET:
            row[name] = value
        elif name != "data":
            data[name] = value
    duration = row["duration"] = finite(row["duration"], "event duration")
    if duration is not None and duration < 0:
        raise ValueError(f"event duration must not be negative, got {duration!r}")
    cost = finite(row["cost"], "event cost")
    if cost is not None and cost < 0:
        raise ValueError(f"event cost must not be negative, got {cost!r}")
    row["cost"] = cost
    prompt = row["prompt_tokens"] = count(row["prompt_tokens"], "event prompt_tokens")
    completion = row["completion_tokens"] = count(
        row["completion_tokens"], "event completion_tokens"
    )
    total = row["total_tokens"] = count(row["total_tokens"], "event total_tokens")
    if total is None and (prompt is not None or completion is not None):
        row["total_tokens"] = (prompt or 0) + (completion or 0)
    for name in ("name", "status", "error"):
        if row[name] is not None:
            row[name] = clean_text(row[name])
    row["data"] = to_json(data, cleaned=cleaned and given is None) if data else None
    return row


def totals_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The execution counters that add up its event rows."""
    llm = priced = tools = 0
    cost = 0.0
    total = prompt = completion = 0
    for e in events:
        if e["type"] == "llm_call":
            llm += 1
            if e["cost"] is not None:
                priced += 1
                cost += e["cost"]
        elif e["type"] == "tool_call":
            tools += 1
        total += e["total_tokens"] or 0
        prompt += e["prompt_tokens"] or 0
        completion += e["completion_tokens"] or 0
    return {
        "total_cost": cost if priced or not llm else None,
        "total_tokens": total,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "llm_calls": llm,
        "tool_calls": tools,
        "unpriced_calls": llm - priced,
    }


# --- the public execution dict (Kagura's API) ---------------------------------


def rows_from_execution_dict(
    execution: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split a public execution dict into one execution row and its event rows."""
    if not isinstance(execution, dict):
        raise ValueError(f"execution must be a dict, got {type(execution).__name__}")
    for name in ("id", "agent_name"):
        if not execution.get(name):
            raise ValueError(f"execution is missing required field {name!r}")
    started_at = execution.get("started_at")
    if started_at is None:
        raise ValueError("execution is missing required field 'started_at'")
    status = execution.get("status") or ("completed" if execution.get("ended_at") else "running")
    events = []
    for seq, event in enumerate(execution.get("events") or []):
        if not isinstance(event, dict) or not event.get("type"):
            raise ValueError(f"event {seq} must be a dict with a 'type'")
        data = dict(event.get("data") or {})
        if event["type"] in _KWARGS_TYPES and isinstance(data.get("kwargs"), dict):
            # Kagura keeps a call's keyword arguments under data["kwargs"]; they are
            # stored as the event's own fields (and read back under "kwargs" again).
            for key, value in data.pop("kwargs").items():
                data.setdefault(str(key), value)
        fields = {k: v for k, v in event.items() if k not in ("type", "timestamp", "data")}
        if "model" in data and "name" not in data and "name" not in fields:
            fields["name"] = data.pop("model")
        elif "tool_name" in data and "name" not in fields:
            fields["name"] = data.pop("tool_name")
        elif "operation" in data and "name" not in fields:
            fields["name"] = data.pop("operation")
        for key in TYPED_EVENT_FIELDS:
            if key in data and key not in fields:
                fields[key] = data.pop(key)
        timestamp = event.get("timestamp")
        if timestamp is None:
            timestamp = started_at
        events.append(
            event_row(execution["id"], seq, event["type"], timestamp, data=data, **fields)
        )
    metrics = dict(execution.get("metrics") or {})
    counters = totals_from_events(events)
    for key in TYPED_METRICS:
        if key in metrics:
            counters[key] = metrics.pop(key)
    row = execution_row(
        id=execution["id"],
        trace_id=execution.get("trace_id"),
        parent_id=execution.get("parent_id"),
        agent_name=execution["agent_name"],
        started_at=started_at,
        ended_at=execution.get("ended_at"),
        duration=execution.get("duration"),
        status=status,
        error=execution.get("error"),
        error_type=execution.get("error_type"),
        kwargs=to_json(execution.get("kwargs") or {}),
        tags=to_json(execution.get("tags") or {}),
        session_id=execution.get("session_id"),
        user_id=execution.get("user_id"),
        metadata=to_json(execution.get("metadata")) if execution.get("metadata") else None,
        model=execution.get("model"),
        metrics=to_json(metrics) if metrics else None,
        host=execution.get("host"),
        pid=execution.get("pid"),
        **counters,
    )
    return row, events


def execution_dict(row: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The public execution dict for one execution row (without events).

    A run still in progress reports the time elapsed so far as its duration.
    `metrics["total_cost"]` is the cost of the priced LLM calls, a number even
    when some (or all) calls had no known price; `metrics["unpriced_calls"]`
    counts those and `metrics["cost_complete"]` is False when there are any.
    """
    duration = row["duration"]
    if duration is None and row["status"] == "running":
        duration = max(0.0, (now or time.time()) - row["started_at"])
    metrics = from_json(row.get("metrics"), {}) or {}
    metrics.update({key: row[key] for key in TYPED_METRICS})
    # Scripts add these up: the dict carries the cost of the priced calls (0.0
    # when none was priced); `unpriced_calls` says how many calls it leaves out.
    metrics["total_cost"] = row["total_cost"] or 0.0
    metrics["cost_complete"] = not row["unpriced_calls"]
    return {
        "id": row["id"],
        "trace_id": row["trace_id"],
        "parent_id": row["parent_id"],
        "agent_name": row["agent_name"],
        "status": row["status"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "duration": duration if duration is not None else 0.0,
        "error": row["error"],
        "error_type": row["error_type"],
        "kwargs": from_json(row["kwargs"], {}) or {},
        "tags": from_json(row["tags"], {}) or {},
        "session_id": row.get("session_id"),
        "user_id": row.get("user_id"),
        "metadata": from_json(row.get("metadata"), {}) or {},
        "model": row["model"],
        "host": row["host"],
        "pid": row["pid"],
        "metrics": metrics,
    }


def event_dict(row: dict[str, Any]) -> dict[str, Any]:
    """The public event dict `{type, timestamp, data, ...typed fields}` for one event row."""
    data = from_json(row["data"], {}) or {}
    if row["type"] in _KWARGS_TYPES and "kwargs" not in data:
        # Kagura's scripts read a tool call's or memory operation's keyword
        # arguments under data["kwargs"]: the free-form fields, as recorded.
        data["kwargs"] = dict(data)
    for key in TYPED_EVENT_FIELDS:
        if row.get(key) is not None:
            data.setdefault(key, row[key])
    if row["type"] == "llm_call" and row["name"] is not None:
        data.setdefault("model", row["name"])
    elif row["type"] == "tool_call" and row["name"] is not None:
        data.setdefault("tool_name", row["name"])
    elif row["type"] == "memory_operation" and row["name"] is not None:
        data.setdefault("operation", row["name"])
    return {
        "type": row["type"],
        "timestamp": row["started_at"],
        "seq": row["seq"],
        "name": row["name"],
        "duration": row["duration"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "cost": row["cost"],
        "status": row["status"],
        "error": row["error"],
        "data": data,
    }
