"""Runs as OTLP spans: the OTLP JSON file format and OTLP/HTTP protobuf pushes.

An execution is a span `invoke_agent {agent}` (kind INTERNAL), each LLM call a
child `chat {model}` (kind CLIENT), each tool call `execute_tool {tool}`, each
memory operation a span named after its operation; nested runs keep their
parent. `spans()` makes plain tuples from store rows once; `json_lines()` and
`request_bytes()` encode them. JSON is written as text directly (no protobuf
objects): the file format is what most exports produce, and the fastest path.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from kagura.observability.otel import mapping as m
from kagura.observability.store.rows import from_json

# One span: trace, span, parent ("" for none), name, kind, start ns, end ns,
# attributes [(key, str | int | float)], status code, status message, host.
Span = tuple[str, str, str, str, int, int, int, list[tuple[str, Any]], int, str, str]

SPANS_PER_LINE = 2000
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_encode_str = json.encoder.encode_basestring  # the C encoder: quotes and escapes one string


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _session(tags: str | None) -> str | None:
    """The session id a run was tagged with (`session_id` or `session`), if any."""
    if not tags or "session" not in tags:
        return None
    value = from_json(tags, {}) or {}
    if not isinstance(value, dict):
        return None
    session = value.get("session_id", value.get("session"))
    return str(session) if session is not None else None


def _data(text: str | None, *keys: str) -> dict[str, Any]:
    """The event's data, parsed only when it holds one of `keys`."""
    if not text or not any(key in text for key in keys):
        return {}
    value = from_json(text, {})
    return value if isinstance(value, dict) else {}


def spans(executions: Any, events: Any) -> Iterator[Span]:
    """OTLP spans for settled executions and their events (two Arrow tables of store rows)."""
    ev = events.to_pydict() if events is not None and events.num_rows else None
    return column_spans(executions.to_pydict(), executions.num_rows, ev)


def row_spans(pairs: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> Iterator[Span]:
    """OTLP spans for (execution row, event rows) pairs, as the recorder commits them."""
    from kagura.observability.store.rows import EVENT_NAMES, EXECUTION_NAMES

    runs = [row for row, _ in pairs]
    events = [event for _, rows in pairs for event in rows]
    ex = {name: [row[name] for row in runs] for name in EXECUTION_NAMES}
    ev = {name: [event[name] for event in events] for name in EVENT_NAMES} if events else None
    return column_spans(ex, len(runs), ev)


def column_spans(ex: dict[str, list], n: int, ev: dict[str, list] | None) -> Iterator[Span]:
    """OTLP spans for executions and events given as columns (name -> list of values)."""
    by_run: dict[str, list[int]] = {}
    if ev is not None:
        for i, run_id in enumerate(ev["execution_id"]):
            by_run.setdefault(run_id, []).append(i)
    for i in range(n):
        status = ex["status"][i]
        if status == "running":
            continue  # a span is sent when it ends
        run_id = ex["id"][i]
        trace_id = ex["trace_id"][i] or run_id
        trace = m.trace_hex(trace_id)
        span_id = m.span_hex(run_id)
        parent = ex["parent_id"][i]
        started = ex["started_at"][i]
        ended = ex["ended_at"][i]
        if ended is None:
            ended = started + (ex["duration"][i] or 0.0)
        agent = ex["agent_name"][i]
        run_model = ex["model"][i]
        host = ex["host"][i] or ""
        attrs: list[tuple[str, Any]] = [
            ("gen_ai.operation.name", "invoke_agent"),
            ("gen_ai.agent.name", agent),
            ("gen_ai.agent.id", run_id),
            ("openinference.span.kind", "AGENT"),
            ("kagura.execution.id", run_id),
        ]
        if parent:
            attrs.append(("kagura.parent.id", parent))
        if m.store_trace_id(trace) != trace_id:
            attrs.append(("kagura.trace.id", trace_id))
        if run_model:
            attrs.append(("gen_ai.request.model", run_model))
        tags = ex["tags"][i]
        session = ex["session_id"][i] or _session(tags)
        if session is not None:
            attrs.append(("gen_ai.conversation.id", session))
            attrs.append(("session.id", session))
        if ex["user_id"][i]:
            attrs.append(("user.id", ex["user_id"][i]))
        if tags and tags not in m.EMPTY_JSON:
            attrs.append((m.TAGS, tags))
        metadata = ex["metadata"][i]
        if metadata and metadata not in m.EMPTY_JSON:
            attrs.append((m.METADATA, metadata))
        code, message = m.STATUS_UNSET, ""
        if status != "completed":
            attrs.append(("kagura.status", status))
            if status == "failed":
                code = m.STATUS_ERROR
                message = ex["error"][i] or ""
                attrs.append(("error.type", ex["error_type"][i] or "_OTHER"))
        yield (
            trace,
            span_id,
            m.span_hex(parent) if parent else "",
            f"invoke_agent {agent}",
            m.KIND_INTERNAL,
            _ns(started),
            _ns(ended),
            attrs,
            code,
            message,
            host,
        )
        if ev is not None:
            for j in by_run.get(run_id, ()):
                yield _event_span(ev, j, trace, span_id, run_id, host)


def _event_span(
    ev: dict[str, list], j: int, trace: str, parent: str, run_id: str, host: str
) -> Span:
    kind = ev["type"][j]
    name = ev["name"][j]
    seq = ev["seq"][j]
    started = ev["started_at"][j]
    duration = ev["duration"][j] or 0.0
    attrs: list[tuple[str, Any]] = []
    span_kind = m.KIND_INTERNAL
    data_text = ev["data"][j]
    if kind == "llm_call":
        span_kind = m.KIND_CLIENT
        data = _data(data_text, "provider", "response_model", "error_type")
        provider = data.get("provider") or m.provider_of(name)
        title = f"chat {name}" if name else "chat"
        attrs.append(("gen_ai.operation.name", "chat"))
        attrs.append(("openinference.span.kind", "LLM"))
        if provider:
            attrs.append(("gen_ai.provider.name", str(provider)))
            attrs.append(("llm.provider", str(provider)))
        if name:
            attrs.append(("gen_ai.request.model", name))
            attrs.append(("gen_ai.response.model", str(data.get("response_model") or name)))
            attrs.append(("llm.model_name", name))
        prompt, completion, total = (
            ev["prompt_tokens"][j],
            ev["completion_tokens"][j],
            ev["total_tokens"][j],
        )
        if prompt is not None:
            attrs.append(("gen_ai.usage.input_tokens", prompt))
            attrs.append(("llm.token_count.prompt", prompt))
        if completion is not None:
            attrs.append(("gen_ai.usage.output_tokens", completion))
            attrs.append(("llm.token_count.completion", completion))
        if total is not None:
            attrs.append(("llm.token_count.total", total))
        cost = ev["cost"][j]
        if cost is not None:
            attrs.append(("gen_ai.usage.cost.amount", float(cost)))
            attrs.append(("gen_ai.usage.cost.currency", "USD"))
            attrs.append(("llm.cost.total", float(cost)))
        else:
            # Unknown when recorded: ingesting it back must not price it now.
            attrs.append(("kagura.cost.known", False))
    elif kind == "tool_call":
        data = _data(data_text, "tool_call_id", "error_type")
        title = f"execute_tool {name}" if name else "execute_tool"
        attrs.append(("gen_ai.operation.name", "execute_tool"))
        attrs.append(("openinference.span.kind", "TOOL"))
        if name:
            attrs.append(("gen_ai.tool.name", name))
            attrs.append(("tool.name", name))
        if data.get("tool_call_id"):
            attrs.append(("gen_ai.tool.call.id", str(data["tool_call_id"])))
    elif kind == "memory_operation":
        data = _data(data_text, "error_type")
        operation = m.memory_operation_name(name)
        title = operation
        attrs.append(("gen_ai.operation.name", operation))
        if name:
            attrs.append(("kagura.memory.operation", name))
    else:
        data = _data(data_text, "error_type")
        title = name or kind
        attrs.append(("kagura.event.type", kind))
        if name:
            attrs.append(("kagura.event.name", name))
    attrs.append(("kagura.execution.id", run_id))
    attrs.append(("kagura.event.seq", seq))
    status = ev["status"][j]
    code, message = m.STATUS_UNSET, ""
    if status in ("failed", "error"):
        code = m.STATUS_ERROR
        message = ev["error"][j] or ""
        attrs.append(("error.type", str(data.get("error_type") or "_OTHER")))
    elif status not in (None, "completed", "ok"):
        attrs.append(("kagura.status", status))
    return (
        trace,
        m.event_span_hex(run_id, seq),
        parent,
        title,
        span_kind,
        _ns(started),
        _ns(started + duration),
        attrs,
        code,
        message,
        host,
    )


# --- OTLP JSON --------------------------------------------------------------------


def _attr_json(key: str, value: Any) -> str:
    if isinstance(value, str):
        return f'{{"key":"{key}","value":{{"stringValue":{_encode_str(value)}}}}}'
    if isinstance(value, bool):
        return f'{{"key":"{key}","value":{{"boolValue":{"true" if value else "false"}}}}}'
    if isinstance(value, int):
        return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'
    return f'{{"key":"{key}","value":{{"doubleValue":{float(value)!r}}}}}'


def _span_json(span: Span) -> str:
    trace, span_id, parent, name, kind, start, end, attrs, code, message, _host = span
    attributes = ",".join([_attr_json(k, v) for k, v in attrs])
    if code:
        status = (
            f'{{"code":{code},"message":{_encode_str(message)}}}'
            if message
            else f'{{"code":{code}}}'
        )
    else:
        status = "{}"
    parent_part = f'"parentSpanId":"{parent}",' if parent else ""
    return (
        f'{{"traceId":"{trace}","spanId":"{span_id}",{parent_part}"name":{_encode_str(name)},'
        f'"kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
        f'"attributes":[{attributes}],"status":{status}}}'
    )


def _resource_json(host: str) -> str:
    attrs = [("service.name", "kagura")]
    if host:
        attrs.append(("host.name", host))
    return '{"attributes":[' + ",".join(_attr_json(k, v) for k, v in attrs) + "]}"


def _scope_json() -> str:
    from kagura import __version__

    return f'{{"name":"{m.SCOPE_NAME}","version":"{__version__}"}}'


def json_lines(items: Iterable[Span], per_line: int = SPANS_PER_LINE) -> Iterator[str]:
    """OTLP JSON file lines: one TracesData per line, at most `per_line` spans each."""
    scope = _scope_json()
    resources: dict[str, str] = {}
    batch: dict[str, list[str]] = {}
    count = 0
    for span in items:
        batch.setdefault(span[10], []).append(_span_json(span))
        count += 1
        if count >= per_line:
            yield _line(batch, resources, scope)
            batch, count = {}, 0
    if count:
        yield _line(batch, resources, scope)


def _line(batch: dict[str, list[str]], resources: dict[str, str], scope: str) -> str:
    parts = []
    for host, encoded in batch.items():
        resource = resources.get(host)
        if resource is None:
            resource = resources[host] = _resource_json(host)
        parts.append(
            f'{{"resource":{resource},"scopeSpans":[{{"scope":{scope},"spans":[{",".join(encoded)}]}}]}}'
        )
    return '{"resourceSpans":[' + ",".join(parts) + "]}\n"


# --- OTLP protobuf ------------------------------------------------------------------


def request_bytes(items: Iterable[Span]) -> bytes:
    """One serialized ExportTraceServiceRequest holding `items`."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    from kagura import __version__

    request = trace_service_pb2.ExportTraceServiceRequest()
    by_host: dict[str, Any] = {}
    for trace, span_id, parent, name, kind, start, end, attrs, code, message, host in items:
        scope_spans = by_host.get(host)
        if scope_spans is None:
            resource_spans = request.resource_spans.add()
            _set_attrs(resource_spans.resource.attributes, [("service.name", "kagura")])
            if host:
                _set_attrs(resource_spans.resource.attributes, [("host.name", host)])
            scope_spans = by_host[host] = resource_spans.scope_spans.add()
            scope_spans.scope.name = m.SCOPE_NAME
            scope_spans.scope.version = __version__
        span = scope_spans.spans.add(
            trace_id=bytes.fromhex(trace),
            span_id=bytes.fromhex(span_id),
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        if parent:
            span.parent_span_id = bytes.fromhex(parent)
        _set_attrs(span.attributes, attrs)
        if code:
            span.status.code = code
            if message:
                span.status.message = message
    del trace_pb2
    return request.SerializeToString()


def _set_attrs(target: Any, attrs: list[tuple[str, Any]]) -> None:
    for key, value in attrs:
        item = target.add(key=key)
        if isinstance(value, str):
            item.value.string_value = value
        elif isinstance(value, bool):
            item.value.bool_value = value
        elif isinstance(value, int):
            item.value.int_value = value
        else:
            item.value.double_value = float(value)


# --- reading runs and writing them out ------------------------------------------------


def read_runs(
    store: Any, since: float | None = None, until: float | None = None, agent: str | None = None
) -> tuple[Any, Any]:
    """Settled executions started in [since, until) (oldest first) and their events, as Arrow."""
    import pyarrow.compute as pc

    executions = store.run(
        "recent_executions",
        agent=agent,
        status=None,
        since=since,
        until=until,
        limit=2**62,
    ).arrow()
    executions = executions.filter(pc.not_equal(executions.column("status"), "running"))
    executions = executions.take(pc.sort_indices(executions, [("started_at", "ascending")]))
    if executions.num_rows == 0:
        return executions, None
    first = pc.min(executions.column("started_at")).as_py()
    events = store.run("execution_events", ids=None, since=first, until=None, type=None).arrow()
    events = events.filter(
        pc.is_in(events.column("execution_id"), value_set=executions.column("id"))
    )
    return executions, events


def json_file_lines(
    store: Any,
    since: float | None = None,
    until: float | None = None,
    agent: str | None = None,
    per_line: int = SPANS_PER_LINE,
) -> tuple[Iterator[str], list[int]]:
    """OTLP JSON lines of runs (spans made by sql/otlp_spans.sql), and a [runs, spans] counter."""
    table = store.run("otlp_spans", agent=agent, since=since, until=until).arrow()
    hosts = table.column("host").to_pylist()
    texts = table.column("span").to_pylist()
    counts = [sum(table.column("is_run").to_pylist()), len(texts)]

    def lines() -> Iterator[str]:
        scope = _scope_json()
        resources: dict[str, str] = {}
        for start in range(0, len(texts), per_line):
            batch: dict[str, list[str]] = {}
            chunk_hosts = hosts[start : start + per_line]
            chunk = texts[start : start + per_line]
            if len(set(chunk_hosts)) == 1:
                batch[chunk_hosts[0] or ""] = chunk
            else:
                for host, text in zip(chunk_hosts, chunk, strict=True):
                    batch.setdefault(host or "", []).append(text)
            yield _line(batch, resources, scope)

    return lines(), counts


def write_file(
    store: Any,
    out: IO[str],
    since: float | None = None,
    until: float | None = None,
    agent: str | None = None,
) -> dict[str, int]:
    """Write runs as OTLP JSON Lines to `out`; return counts of runs and spans."""
    lines, (runs, n) = json_file_lines(store, since, until, agent)
    for line in lines:
        out.write(line)
    return {"executions": runs, "spans": n}


def traces_url(endpoint: str) -> str:
    """`endpoint` with `/v1/traces` appended unless it already names a path ending so."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


class PushError(Exception):
    """An OTLP/HTTP endpoint refused spans, or could not be reached, after every retry."""


def post(
    url: str,
    body: bytes,
    *,
    timeout: float = 10.0,
    retries: int = 5,
    backoff: float = 0.5,
    headers: dict[str, str] | None = None,
) -> int:
    """POST one protobuf request; retry on 429/502/503/504 and connection errors; return the status."""
    attempt = 0
    while True:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-protobuf", **(headers or {})},
        )
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            if error.code not in RETRY_STATUSES or attempt >= retries:
                detail = error.read()[:200].decode("utf-8", "replace")
                raise PushError(
                    f"{url} answered {error.code} {error.reason} {detail}".strip()
                ) from None
            retry_after = _retry_after(error.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError) as error:
            if attempt >= retries:
                reason = getattr(error, "reason", error)
                raise PushError(f"cannot reach {url}: {reason}") from None
        time.sleep(retry_after if retry_after is not None else backoff * (2**attempt))
        attempt += 1


def _retry_after(value: str | None) -> float | None:
    try:
        return min(30.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def push(
    store: Any,
    endpoint: str,
    since: float | None = None,
    until: float | None = None,
    agent: str | None = None,
    *,
    batch: int = 512,
    timeout: float = 10.0,
) -> dict[str, int]:
    """Send runs to an OTLP/HTTP endpoint as protobuf, `batch` spans per request; return counts."""
    executions, events = read_runs(store, since, until, agent)
    url = traces_url(endpoint)
    sent = requests = 0
    chunk: list[Span] = []
    for span in spans(executions, events):
        chunk.append(span)
        if len(chunk) >= batch:
            post(url, request_bytes(chunk), timeout=timeout)
            sent += len(chunk)
            requests += 1
            chunk = []
    if chunk:
        post(url, request_bytes(chunk), timeout=timeout)
        sent += len(chunk)
        requests += 1
    return {"executions": executions.num_rows, "spans": sent, "requests": requests}


def write_path(path: Path, store: Any, **window: Any) -> dict[str, int]:
    """Write the OTLP JSON file at `path` (owner-only); return counts."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", newline="\n") as out:
        return write_file(store, out, **window)
