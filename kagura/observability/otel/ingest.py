"""Spans of any OpenTelemetry-instrumented framework, landed in a store as runs.

Agent spans (`invoke_agent`, OpenInference AGENT) and root spans become
executions; LLM, tool and memory spans become events of their run; other spans
become `custom` events of their run. Attributes are read under their gen_ai.*
names, the deprecated ones (`gen_ai.system`, `gen_ai.usage.prompt_tokens`) and
the OpenInference ones. A span's id decides its row, so the same span ingested
twice is one row. A span with bad ids, times or attribute types is rejected
whole and counted; the others are stored in one transaction.
"""

from __future__ import annotations

import base64
import json
import operator
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kagura.observability.otel import mapping as m
from kagura.observability.recording import redact
from kagura.observability.store.rows import HOST, MAX_INT, MAX_TIME, SETTLED, to_json

MAX_INDEX = 200_000  # span ids remembered between requests, to find the run of a late child
_CHUNK = 400  # ids per `IN (...)` list


class BadData(ValueError):
    """The payload is not an OTLP trace request (the receiver answers 400)."""


@dataclass
class Batch:
    """Rows made from one request: executions and events by id, and what was rejected."""

    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    own_counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[tuple, Any] = field(default_factory=dict)  # price lookups of this batch, by model
    spans: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(message)

    def error_message(self) -> str:
        """What the first rejections were, for `partial_success.error_message`."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


class SpanIndex:
    """Which run each recently seen span belongs to (a child may arrive before or after its parent)."""

    def __init__(self, size: int = MAX_INDEX):
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, span_hex: str) -> str | None:
        return self._runs.get(span_hex)

    def update(self, items: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            runs = self._runs
            for key, run in items:
                runs[key] = run
            while len(runs) > self._size:
                runs.popitem(last=False)


# --- decoding ---------------------------------------------------------------------


def decode_protobuf(body: bytes) -> Any:
    """An ExportTraceServiceRequest from protobuf bytes (BadData if they are not one)."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    try:
        return trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise BadData(f"not an OTLP protobuf trace request: {exc}") from None


def decode_json(body: bytes | str) -> JsonRequest:
    """The spans of an OTLP JSON trace request (hex ids, as OTLP/HTTP and the file format use).

    Read straight from the parsed JSON by the field names of the OTLP messages (lowerCamelCase
    or the proto names), unknown fields ignored; protobuf's own JSON parser builds every
    message through Python reflection and is 10x slower. A field of the wrong type makes the
    whole request BadData, as protobuf's parser would; bad ids or times reject one span.
    """
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadData(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadData("an OTLP JSON trace request must be an object with resourceSpans")
    try:
        return JsonRequest(list(_json_spans(value)))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise BadData(f"not an OTLP JSON trace request: {exc}") from None


class JsonRequest:
    """The spans of one OTLP JSON request, ready for rows()."""

    def __init__(self, spans: list[_Span]):
        self.spans = spans


def _field(item: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = item.get(camel)
    if value is None:
        value = item.get(snake, default)
    return default if value is None else value


def _json_list(item: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object, got {type(item).__name__}")
    value = _field(item, camel, snake, [])
    if not isinstance(value, list):
        raise TypeError(f"{camel} must be a list, got {type(value).__name__}")
    return value


def _json_spans(request: dict[str, Any]) -> Any:
    for resource_spans in _json_list(request, "resourceSpans", "resource_spans"):
        resource_item = _field(resource_spans, "resource", "resource", {})
        resource = _json_attributes(_json_list(resource_item, "attributes", "attributes"))
        for scope_spans in _json_list(resource_spans, "scopeSpans", "scope_spans"):
            for item in _json_list(scope_spans, "spans", "spans"):
                if not isinstance(item, dict):
                    raise TypeError(f"a span must be an object, got {type(item).__name__}")
                status = _field(item, "status", "status", {})
                if not isinstance(status, dict):
                    raise TypeError("status must be an object")
                name = _field(item, "name", "name", "")
                message = _field(status, "message", "message", "")
                if not isinstance(name, str) or not isinstance(message, str):
                    raise TypeError("span name and status message must be strings")
                yield _Span(
                    _json_id(item, "traceId", "trace_id"),
                    _json_id(item, "spanId", "span_id"),
                    _json_id(item, "parentSpanId", "parent_span_id"),
                    name,
                    _json_int(_field(item, "startTimeUnixNano", "start_time_unix_nano", 0)),
                    _json_int(_field(item, "endTimeUnixNano", "end_time_unix_nano", 0)),
                    _json_attributes(_json_list(item, "attributes", "attributes")),
                    _json_status_code(_field(status, "code", "code", 0)),
                    message,
                    resource,
                )


def _json_id(item: dict[str, Any], camel: str, snake: str) -> str:
    text = _field(item, camel, snake, "")
    if not isinstance(text, str):
        raise TypeError(f"{camel} must be a hex string")
    return bytes.fromhex(text).hex()  # ValueError (the request is bad) when not hex


def _json_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return int(value)


_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _json_status_code(value: Any) -> int:
    if isinstance(value, str) and value in _STATUS_CODES:
        return _STATUS_CODES[value]
    return _json_int(value)


def _json_attributes(items: list[Any]) -> dict[str, Any]:
    out = {}
    for kv in items:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise TypeError("an attribute must be an object with a string key")
        out[kv["key"]] = _json_value(kv.get("value") or {})
    return out


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"an attribute value must be an object, got {type(value).__name__}")
    if "stringValue" in value or "string_value" in value:
        text = _field(value, "stringValue", "string_value", "")
        if not isinstance(text, str):
            raise TypeError("stringValue must be a string")
        return text
    if "intValue" in value or "int_value" in value:
        return _json_int(_field(value, "intValue", "int_value", 0))
    if "doubleValue" in value or "double_value" in value:
        number = _field(value, "doubleValue", "double_value", 0.0)
        if isinstance(number, bool) or not isinstance(number, (int, float, str)):
            raise TypeError("doubleValue must be a number")
        return float(number)  # "NaN" and "Infinity" too, as in protobuf's JSON
    if "boolValue" in value or "bool_value" in value:
        flag = _field(value, "boolValue", "bool_value", False)
        if not isinstance(flag, bool):
            raise TypeError("boolValue must be true or false")
        return flag
    if "arrayValue" in value or "array_value" in value:
        array = _field(value, "arrayValue", "array_value", {})
        return [_json_value(v) for v in _json_list(array, "values", "values")]
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _field(value, "kvlistValue", "kvlist_value", {})
        return _json_attributes(_json_list(kvlist, "values", "values"))
    if "bytesValue" in value or "bytes_value" in value:
        return base64.b64decode(_field(value, "bytesValue", "bytes_value", ""), validate=True).hex()
    return None


# --- spans to rows ------------------------------------------------------------------


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "string_value":
        return any_value.string_value
    if kind == "int_value":
        return any_value.int_value
    if kind == "double_value":
        return any_value.double_value
    if kind == "bool_value":
        return any_value.bool_value
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


_quote = json.encoder.encode_basestring  # the C encoder: one JSON string


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _check_types(attrs: dict[str, Any]) -> str | None:
    """Why the attributes can't be read (a known name holding the wrong type), or None."""
    for key, value in attrs.items():
        if key in m.STRING_KEYS:
            if not isinstance(value, str):
                return f"attribute {key} must be a string, got {type(value).__name__}"
        elif key in m.INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"attribute {key} must be an integer, got {type(value).__name__}"
            if value < 0:
                return f"attribute {key} must not be negative, got {value}"
        elif key in m.BOOL_KEYS:
            if not isinstance(value, bool):
                return f"attribute {key} must be a boolean, got {type(value).__name__}"
        elif key in m.NUMBER_KEYS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"attribute {key} must be a number, got {type(value).__name__}"
            if not value >= 0 or value == float("inf"):
                return f"attribute {key} must be a finite non-negative number, got {value!r}"
    return None


def _role(attrs: dict[str, Any]) -> str:
    """What a span is: agent, llm_call, tool_call, memory_operation or other."""
    operation = attrs.get("gen_ai.operation.name")
    kind = attrs.get("openinference.span.kind")
    if operation in m.AGENT_OPERATIONS or kind in m.OI_AGENT:
        return "agent"
    if operation in m.LLM_OPERATIONS or kind in m.OI_LLM:
        return "llm_call"
    if operation in m.TOOL_OPERATIONS or kind in m.OI_TOOL:
        return "tool_call"
    if operation in m.MEMORY_OPERATIONS or kind in m.OI_MEMORY:
        return "memory_operation"
    return "other"


def _after(name: str, prefix: str) -> str:
    return name[len(prefix) :].strip() if name.startswith(prefix) else name


_NANO = 1e-9
_MAX_NANO = int(MAX_TIME * 1e9)


@dataclass(slots=True)
class _Span:
    """One span as read from OTLP JSON or protobuf; `role` and `run` are filled while mapping."""

    trace: str
    span: str
    parent: str
    name: str
    start: int
    end: int
    attrs: dict[str, Any]
    code: int
    message: str
    resource: dict[str, Any]
    role: str = ""
    run: str = ""


def _proto_spans(request: Any) -> Any:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _Span(
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    span.name,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    _attributes(span.attributes),
                    span.status.code,
                    span.status.message,
                    resource,
                )


def _problem(span: _Span) -> str | None:
    if len(span.trace) != 32 or span.trace == "0" * 32:
        return f"span {span.name!r}: trace id must be 16 bytes, not all zero"
    if len(span.span) != 16 or span.span == "0" * 16:
        return f"span {span.name!r}: span id must be 8 bytes, not all zero"
    if span.parent and len(span.parent) != 16:
        return f"span {span.name!r}: parent span id must be 8 bytes"
    if span.start <= 0 or span.start > _MAX_NANO:
        return f"span {span.name!r}: start time is missing or out of range"
    if span.end and (span.end < span.start or span.end > _MAX_NANO):
        return f"span {span.name!r}: end time is before its start or out of range"
    return _check_types(span.attrs)


def rows(request: Any, index: SpanIndex | None = None) -> Batch:
    """Execution and event rows for every acceptable span of an OTLP trace request."""
    batch = Batch()
    spans: dict[str, _Span] = {}
    decoded = request.spans if isinstance(request, JsonRequest) else _proto_spans(request)
    for span in decoded:
        batch.spans += 1
        problem = _problem(span)
        if problem is not None:
            batch.reject(problem)
            continue
        span.role = _role(span.attrs)
        spans[span.span] = span
    for span in spans.values():
        try:
            run = _run_of(span, spans, index, 0)
            if _is_execution(span):
                _execution(batch, span, spans, index)
            if span.role != "agent" and (span.parent or span.role != "other"):
                _event(batch, span, run)
        except ValueError as exc:
            batch.reject(f"span {span.name!r}: {exc}")
            batch.executions.pop(_own_id(span), None)
    if index is not None:
        index.update((s.span, s.run) for s in spans.values())
    return batch


def _own_id(span: _Span) -> str:
    """The execution id an execution span becomes."""
    given = span.attrs.get("kagura.execution.id")
    if given and span.role == "agent":
        return given
    return m.span_execution_id(span.span)


def _is_execution(span: _Span) -> bool:
    return span.role == "agent" or not span.parent


def _run_of(span: _Span, spans: dict[str, _Span], index: SpanIndex | None, depth: int) -> str:
    """The execution a span is, or belongs to."""
    if span.run:
        return span.run
    given = span.attrs.get("kagura.execution.id")
    if given:
        span.run = given
    elif _is_execution(span):
        span.run = _own_id(span)
    else:
        span.run = _parent_run(span, spans, index, depth)
    return span.run


def _parent_run(span: _Span, spans: dict[str, _Span], index: SpanIndex | None, depth: int) -> str:
    parent = spans.get(span.parent)
    if parent is not None and depth < 256:
        return _run_of(parent, spans, index, depth + 1)
    known = index.get(span.parent) if index is not None else None
    return known or m.span_execution_id(span.parent)


def _status(span: _Span) -> str:
    given = span.attrs.get("kagura.status")
    if given in SETTLED:
        return given
    return "failed" if span.code == m.STATUS_ERROR else "completed"


# Rows are built as dicts here rather than through execution_row/event_row: every
# value was checked by _problem() and _check_types() (protobuf strings are valid UTF-8,
# its integers 64-bit), and the receiver makes tens of thousands of rows a second.


def _json_object(value: Any) -> str | None:
    """A JSON-object attribute (tags, metadata), redacted, as store text; None when absent,
    empty or not one JSON object (such a value is dropped, the span is kept)."""
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed:
        return None
    return json.dumps(redact.clean_mapping(parsed), ensure_ascii=False)


def _tags(attrs: dict[str, Any], session: Any) -> str | None:
    """The run's tags: Kagura's own `kagura.tags` when the span has them, else the session."""
    tags = _json_object(attrs.get(m.TAGS))
    if tags is None and session:
        return json.dumps({"session_id": session}, ensure_ascii=False)
    return tags


def _execution(batch: Batch, span: _Span, spans: dict[str, _Span], index: SpanIndex | None) -> None:
    attrs = span.attrs
    run_id = span.run
    parent_id = attrs.get("kagura.parent.id")
    if parent_id is None and span.parent:
        parent_id = _parent_run(span, spans, index, 0)
    agent = _first(attrs, m.AGENT_NAME) or _after(span.name, "invoke_agent ")
    if not agent:
        agent = span.resource.get("service.name")
        agent = agent if isinstance(agent, str) and agent else "unknown"
    status = _status(span)
    failed = status == "failed"
    session = _first(attrs, m.SESSION)
    end = span.end or span.start
    started = span.start * _NANO
    batch.executions[run_id] = {
        "id": run_id,
        "trace_id": attrs.get("kagura.trace.id") or m.store_trace_id(span.trace),
        "parent_id": parent_id,
        "agent_name": agent,
        "started_at": started,
        "ended_at": end * _NANO,
        "duration": (end - span.start) * _NANO,
        "status": status,
        "error": (redact.redact_text(span.message) if span.message else None) if failed else None,
        "error_type": (attrs.get("error.type") or "Error") if failed else None,
        "kwargs": "{}",
        "tags": _tags(attrs, session),
        "model": _first(attrs, m.REQUEST_MODEL),
        "total_cost": 0.0,
        "total_tokens": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "llm_calls": 0,
        "tool_calls": 0,
        "unpriced_calls": 0,
        "metrics": None,
        "host": _resource_text(span.resource, "host.name") or HOST,
        "pid": _resource_pid(span.resource),
        # The conversation id is the run's session (kept in tags too, as before).
        "session_id": str(session) if session else None,
        "user_id": str(attrs[m.USER]) if attrs.get(m.USER) else None,
        "metadata": _json_object(attrs.get(m.METADATA)),
    }
    if span.role == "agent":
        prompt = _first(attrs, m.INPUT_TOKENS)
        completion = _first(attrs, m.OUTPUT_TOKENS)
        if prompt is not None or completion is not None:
            batch.own_counters[run_id] = {
                "prompt_tokens": prompt or 0,
                "completion_tokens": completion or 0,
                "total_tokens": (prompt or 0) + (completion or 0),
            }


def _resource_text(resource: dict[str, Any], key: str) -> str | None:
    value = resource.get(key)
    return value if isinstance(value, str) and value else None


def _resource_pid(resource: dict[str, Any]) -> int:
    value = resource.get("process.pid")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    return 0


def _seq(span: _Span) -> int:
    given = span.attrs.get("kagura.event.seq")
    if given is not None:
        return given
    # Ordered by start time (microseconds), made distinct by the span id's last bits.
    return ((span.start // 1000) << 10 | (int(span.span[-3:], 16) & 0x3FF)) & MAX_INT


def _event(batch: Batch, span: _Span, run: str) -> None:
    attrs = span.attrs
    role = span.role
    end = span.end or span.start
    failed = span.code == m.STATUS_ERROR
    status: str | None = "failed" if failed else "completed"
    data: dict[str, Any] = {"span_name": span.name, "span_id": span.span}
    name: Any = None
    prompt = completion = total = None
    cost = None
    extra = None
    if failed:
        data["error_type"] = attrs.get("error.type") or "_OTHER"
    if role == "llm_call":
        name = _first(attrs, m.REQUEST_MODEL)
        provider = _first(attrs, m.PROVIDER)
        prompt = _first(attrs, m.INPUT_TOKENS)
        completion = _first(attrs, m.OUTPUT_TOKENS)
        total = _first(attrs, m.TOTAL_TOKENS)
        if total is None and (prompt is not None or completion is not None):
            total = (prompt or 0) + (completion or 0)
        cost = _cost(batch, attrs, name, provider, prompt, completion)
        if provider:
            data["provider"] = provider
        response_model = attrs.get("gen_ai.response.model")
        if response_model and response_model != name:
            data["response_model"] = response_model
        operation = attrs.get("gen_ai.operation.name")
        if operation and operation != "chat":
            data["operation"] = operation
    elif role == "tool_call":
        name = _first(attrs, m.TOOL_NAME) or _after(span.name, "execute_tool ")
        call_id = attrs.get("gen_ai.tool.call.id")
        if call_id:
            data["tool_call_id"] = call_id
    elif role == "memory_operation":
        name = (
            attrs.get("kagura.memory.operation") or attrs.get("gen_ai.operation.name") or span.name
        )
        status = None
    else:
        given = attrs.get("kagura.event.type")
        if given:
            role = given
            name = attrs.get("kagura.event.name")
            status = None
        else:
            role = "custom"
            name = span.name
            extra = {k: v for k, v in attrs.items() if not k.startswith("kagura.")}
    if attrs.get("kagura.status"):
        status = attrs["kagura.status"]
    if extra:
        data["attributes"] = redact.clean_mapping(extra)
        data_text = to_json(data)
    elif len(data) == 2:
        # The common case, without json.dumps (a third of the cost of an event row).
        data_text = f'{{"span_name": {_quote(span.name)}, "span_id": "{span.span}"}}'
    else:
        data_text = json.dumps(data, ensure_ascii=False)
    seq = _seq(span)
    batch.events[(run, seq)] = {
        "execution_id": run,
        "seq": seq,
        "type": role,
        "name": name,
        "started_at": span.start * _NANO,
        "duration": (end - span.start) * _NANO,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cost": cost,
        "status": status,
        "error": (redact.redact_text(span.message) if span.message else None) if failed else None,
        "data": data_text,
    }


def _cost(
    batch: Batch,
    attrs: dict[str, Any],
    name: Any,
    provider: Any,
    prompt: Any,
    completion: Any,
) -> float | None:
    """The span's own USD cost, else the price map's (None when the model has no known price)."""
    amount = attrs.get("gen_ai.usage.cost.amount")
    currency = attrs.get("gen_ai.usage.cost.currency")
    if amount is not None and currency in (None, "USD", "usd"):
        return float(amount)
    if amount is None and attrs.get("llm.cost.total") is not None:
        return float(attrs["llm.cost.total"])
    if attrs.get("kagura.cost.known") is False:
        return None
    if not name or (prompt is None and completion is None):
        return None
    key = (name, provider)
    priced = batch.prices.get(key, False)
    if priced is False:
        from kagura.observability.recording import pricing

        priced = pricing.cost_function(name)
        if priced is None and provider and "/" not in name:
            priced = pricing.cost_function(f"{provider}/{name}")
        batch.prices[key] = priced
    if priced is None:
        return None
    return priced(prompt, completion, _first(attrs, m.CACHED_TOKENS))


# --- writing --------------------------------------------------------------------------

_COUNTERS = """
SELECT execution_id,
       count(*) FILTER (WHERE type = 'llm_call'),
       count(cost) FILTER (WHERE type = 'llm_call'),
       sum(cost) FILTER (WHERE type = 'llm_call'),
       count(*) FILTER (WHERE type = 'tool_call'),
       coalesce(sum(total_tokens), 0),
       coalesce(sum(prompt_tokens), 0),
       coalesce(sum(completion_tokens), 0)
FROM events WHERE execution_id IN ({}) GROUP BY execution_id
"""


def write(store: Any, batch: Batch) -> int:
    """Store a batch in one transaction, the runs' counters summed over all their events; return spans stored."""
    from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES

    if not batch.executions and not batch.events:
        return 0
    exec_insert = (
        f"INSERT OR REPLACE INTO executions ({', '.join(EXECUTION_NAMES)}) "
        f"VALUES ({', '.join('?' for _ in EXECUTION_NAMES)})"
    )
    event_insert = (
        f"INSERT OR REPLACE INTO events ({', '.join(EVENT_NAMES)}) "
        f"VALUES ({', '.join('?' for _ in EVENT_NAMES)})"
    )
    touched = set(batch.executions) | {run for run, _ in batch.events}
    event_values = operator.itemgetter(*EVENT_NAMES)
    exec_values = operator.itemgetter(*EXECUTION_NAMES)
    with store._wal.write() as con:
        if batch.events:
            con.executemany(event_insert, map(event_values, batch.events.values()))
        runs = dict(batch.executions)
        missing = [run for run in touched if run not in runs]
        for part in _chunks(missing):
            cursor = con.execute(
                f"SELECT {', '.join(EXECUTION_NAMES)} FROM executions "
                f"WHERE id IN ({', '.join('?' for _ in part)})",
                part,
            )
            for values in cursor:
                runs[values[0]] = dict(zip(EXECUTION_NAMES, values, strict=True))
        counters: dict[str, tuple] = {}
        for part in _chunks(list(runs)):
            for values in con.execute(_COUNTERS.format(", ".join("?" for _ in part)), part):
                counters[values[0]] = values[1:]
        for run_id, row in runs.items():
            found = counters.get(run_id)
            if found is None:
                row.update(batch.own_counters.get(run_id, {}))
                continue
            llm, priced, cost, tools, total, prompt, completion = found
            row.update(
                llm_calls=llm,
                tool_calls=tools,
                unpriced_calls=llm - priced,
                total_cost=(cost or 0.0) if priced or not llm else None,
                total_tokens=total,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        if runs:
            con.executemany(exec_insert, map(exec_values, runs.values()))
    store._note_appended(len(batch.executions))
    return batch.spans - batch.rejected


def merge(batches: list[Batch]) -> Batch:
    """One batch holding the rows of several (later rows of the same span win)."""
    if len(batches) == 1:
        return batches[0]
    out = Batch()
    for batch in batches:
        out.executions.update(batch.executions)
        out.events.update(batch.events)
        out.own_counters.update(batch.own_counters)
        out.spans += batch.spans
        out.rejected += batch.rejected
    return out


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def ingest_request(store: Any, request: Any, index: SpanIndex | None = None) -> Batch:
    """Map and store one decoded request; return the batch (counts, rejections)."""
    batch = rows(request, index)
    write(store, batch)
    return batch


def ingest_file(store: Any, path: Any) -> dict[str, Any]:
    """Ingest an OTLP JSON Lines file (one TracesData per line); return counts by line."""
    index = SpanIndex()
    stored = rejected = lines = 0
    bad_lines: list[str] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            lines += 1
            try:
                request = decode_json(line)
            except BadData as exc:
                if len(bad_lines) < 5:
                    bad_lines.append(f"line {number}: {exc}")
                rejected += 1
                continue
            batch = ingest_request(store, request, index)
            stored += batch.spans - batch.rejected
            rejected += batch.rejected
            if batch.rejected and len(bad_lines) < 5:
                bad_lines.append(f"line {number}: {batch.error_message()}")
    return {"lines": lines, "spans": stored, "rejected": rejected, "errors": bad_lines}
