"""Export to the OTLP file format, parse every line with opentelemetry-proto, ingest into a
fresh store: the same runs, trees, tokens, costs and statuses."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from otel_parts import run_cli
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.store.rows import event_row

T0 = 1_780_000_000.0


def _store(path):
    store = EventStore(path)
    planner, planner_events = run("planner", T0, duration=4.0, costs=(0.002, None), tools=1)
    # Who the run was for and how it was labelled travel with it.
    planner["session_id"] = "sess-42"
    planner["user_id"] = "user-7"
    planner["tags"] = json.dumps({"beta": True, "team": "search"})
    planner["metadata"] = json.dumps({"release": "2.1", "region": "eu"})
    child, child_events = run(
        "researcher", T0 + 1.0, duration=1.5, costs=(0.0005,), tokens=(40, 10), parent=planner
    )
    failed, failed_events = run(
        "planner", T0 + 10.0, status="failed", error="boom: rate limited", costs=(0.001,)
    )
    memory = event_row(
        failed["id"], len(failed_events), "memory_operation", T0 + 10.2, name="store", duration=0.01
    )
    failed_events.append(memory)
    cancelled, cancelled_events = run("writer", T0 + 20.0, status="cancelled", costs=())
    store.append_many(
        [
            (planner, planner_events),
            (child, child_events),
            (failed, failed_events),
            (cancelled, cancelled_events),
        ]
    )
    store.close()
    return {"planner": planner, "child": child, "failed": failed, "cancelled": cancelled}


def _hex_to_b64(item):
    for key in ("traceId", "spanId", "parentSpanId"):
        if item.get(key):
            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()


def _parse_lines(path):
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1 import trace_pb2

    spans = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        for rs in data["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    _hex_to_b64(span)
        traces = json_format.ParseDict(data, trace_pb2.TracesData())
        for rs in traces.resource_spans:
            for ss in rs.scope_spans:
                spans.extend(ss.spans)
    return spans


def _attrs(span):
    out = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


def test_export_parse_ingest_round_trip(tmp_path):
    source = tmp_path / "source.db"
    rows = _store(source)
    out = tmp_path / "runs.otlp.jsonl"
    result = run_cli(
        "monitor", "export", "--format", "otlp-json", "-o", str(out), "--db", str(source)
    )
    assert result.returncode == 0, result.stderr
    assert "Exported 4 runs as 10 spans" in result.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600

    spans = _parse_lines(out)
    assert len(spans) == 10  # 4 runs; events: 2 llm + 1 tool, 1 llm, 1 llm + 1 memory
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == [
        "chat gpt-4o-mini",
        "execute_tool search",
        "invoke_agent planner",
        "invoke_agent researcher",
        "invoke_agent writer",
        "upsert_memory",
    ]
    planner_span = next(
        s
        for s in by_name["invoke_agent planner"]
        if _attrs(s)["kagura.execution.id"] == rows["planner"]["id"]
    )
    child_span = by_name["invoke_agent researcher"][0]
    assert child_span.parent_span_id == planner_span.span_id
    assert child_span.trace_id == planner_span.trace_id
    assert planner_span.kind == 1 and by_name["chat gpt-4o-mini"][0].kind == 3
    attrs = _attrs(planner_span)
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "planner"
    assert attrs["openinference.span.kind"] == "AGENT"
    assert attrs["session.id"] == attrs["gen_ai.conversation.id"] == "sess-42"
    assert attrs["user.id"] == "user-7"
    assert json.loads(attrs["kagura.tags"]) == {"beta": True, "team": "search"}
    assert json.loads(attrs["metadata"]) == {"release": "2.1", "region": "eu"}
    assert "user.id" not in _attrs(by_name["invoke_agent writer"][0])
    assert "metadata" not in _attrs(by_name["invoke_agent writer"][0])
    chats = [_attrs(s) for s in by_name["chat gpt-4o-mini"]]
    assert sorted(c.get("gen_ai.usage.cost.amount", -1) for c in chats) == [
        -1,
        0.0005,
        0.001,
        0.002,
    ]
    assert all(c["gen_ai.usage.input_tokens"] in (100, 40) for c in chats)
    assert all(
        c["gen_ai.provider.name"] == "openai" and c["llm.provider"] == "openai" for c in chats
    )
    assert {c.get("gen_ai.usage.cost.currency") for c in chats} == {"USD", None}
    failed_span = next(
        s
        for s in by_name["invoke_agent planner"]
        if _attrs(s)["kagura.execution.id"] == rows["failed"]["id"]
    )
    assert failed_span.status.code == 2
    assert failed_span.status.message == "boom: rate limited"
    assert _attrs(failed_span)["error.type"] == "ValueError"
    tool = _attrs(by_name["execute_tool search"][0])
    assert tool["gen_ai.tool.name"] == "search" and tool["openinference.span.kind"] == "TOOL"

    target = tmp_path / "target.db"
    result = run_cli("monitor", "ingest", str(out), "--db", str(target))
    assert result.returncode == 0, result.stderr
    assert "Ingested 10 spans from 1 lines" in result.stdout

    with EventStore(target) as store:
        got = {r["id"]: r for r in store.get_executions(limit=100)}
        assert set(got) == {r["id"] for r in rows.values()}
        for name, row in rows.items():
            back = got[row["id"]]
            assert back["agent_name"] == row["agent_name"], name
            assert back["status"] == row["status"], name
            assert back["trace_id"] == row["trace_id"], name
            assert back["parent_id"] == row["parent_id"], name
            assert back["started_at"] == pytest.approx(row["started_at"], abs=1e-6)
            assert back["duration"] == pytest.approx(row["duration"], abs=1e-6)
            for key in (
                "total_tokens",
                "prompt_tokens",
                "completion_tokens",
                "llm_calls",
                "tool_calls",
                "unpriced_calls",
            ):
                assert back["metrics"][key] == row[key], (name, key)
            assert back["metrics"]["total_cost"] == pytest.approx(row["total_cost"] or 0.0)
        assert got[rows["failed"]["id"]]["error"] == "boom: rate limited"
        back = got[rows["planner"]["id"]]
        assert (back["session_id"], back["user_id"]) == ("sess-42", "user-7")
        assert back["tags"] == {"beta": True, "team": "search"}
        assert back["metadata"] == {"release": "2.1", "region": "eu"}
        cancelled = got[rows["cancelled"]["id"]]
        assert (cancelled["session_id"], cancelled["user_id"], cancelled["metadata"]) == (
            None,
            None,
            {},
        )
        assert got[rows["failed"]["id"]]["error_type"] == "ValueError"
        planner = store.get_execution(rows["planner"]["id"])
        assert [(e["type"], e["name"], e["cost"]) for e in planner["events"]] == [
            ("llm_call", "gpt-4o-mini", 0.002),
            ("llm_call", "gpt-4o-mini", None),
            ("tool_call", "search", None),
        ]
        assert [c["id"] for c in planner["children"]] == [rows["child"]["id"]]
        failed = store.get_execution(rows["failed"]["id"])
        assert [(e["type"], e["name"]) for e in failed["events"]] == [
            ("llm_call", "gpt-4o-mini"),
            ("memory_operation", "store"),
        ]

    # Ingesting the same file again changes nothing: one run per span.
    assert run_cli("monitor", "ingest", str(out), "--db", str(target)).returncode == 0
    with EventStore(target) as store:
        assert len(store.get_executions(limit=100)) == 4
        assert len(store.get_execution(rows["planner"]["id"])["events"]) == 3


def test_export_to_stdout_and_filters(tmp_path):
    source = tmp_path / "source.db"
    _store(source)
    result = run_cli("monitor", "export", "--agent", "writer", "--db", str(source))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    names = [
        s["name"]
        for rs in json.loads(lines[0])["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert names == ["invoke_agent writer"]
    span = json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    # The file format: hex ids, integer enums, 64-bit integers as strings.
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
    assert span["kind"] == 1 and isinstance(span["startTimeUnixNano"], str)


def test_export_bad_usage(tmp_path):
    source = tmp_path / "source.db"
    _store(source)
    result = run_cli("monitor", "export", "--format", "zipkin", "--db", str(source))
    assert result.returncode == 2 and result.stderr.startswith("Error: unknown --format")
    assert "Traceback" not in result.stderr
    result = run_cli("monitor", "export", "--agent", "nobody", "--db", str(source))
    assert result.returncode == 1 and "No runs of agent 'nobody'" in result.stderr
    assert result.stdout == ""
    result = run_cli("monitor", "ingest", str(tmp_path / "nope.jsonl"), "--db", str(source))
    assert result.returncode == 1 and "no file" in result.stderr


def _file_spans(text):
    return [
        span
        for line in text.splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]


def _normal(span):
    span = dict(span)
    span["attributes"] = sorted(
        (a["key"], json.dumps(a["value"], sort_keys=True)) for a in span["attributes"]
    )
    return span


def test_sql_otlp_spans_and_the_protobuf_path_make_the_same_spans(tmp_path):
    """sql/otlp_spans.sql (files) and export.spans (pushes, forwarding) map runs the same way."""
    import io

    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from kagura.observability.otel import export

    source = tmp_path / "source.db"
    rows = _store(source)
    with EventStore(source) as store:
        # An odd id (not exec_ + hex) and a session tag go through both paths too.
        odd, odd_events = run("tagger", T0 + 30.0, costs=(0.003,), tools=1)
        odd["id"] = "custom-run-1"
        odd["trace_id"] = "custom-trace"
        odd["tags"] = json.dumps({"session_id": "s-1"})
        for event in odd_events:
            event["execution_id"] = "custom-run-1"
        store.append(odd, odd_events)
        out = io.StringIO()
        counts = export.write_file(store, out)
        executions, events = export.read_runs(store)
        body = export.request_bytes(export.spans(executions, events))
    assert counts == {"executions": 5, "spans": 13}
    from_sql = {s["spanId"]: _normal(s) for s in _file_spans(out.getvalue())}
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    from_proto = {}
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                d = json_format.MessageToDict(span)
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in d:
                        d[key] = base64.b64decode(d[key]).hex()
                d.setdefault("status", {})
                from_proto[d["spanId"]] = _normal(d)
    assert set(from_sql) == set(from_proto)
    for span_id, span in from_sql.items():
        other = from_proto[span_id]
        # protobuf's JSON names kind and status code by name, and drops a zero status
        other["kind"] = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_CLIENT": 3}[other["kind"]]
        if other["status"].get("code"):
            other["status"]["code"] = 2
        assert span == other, span_id
    odd_span = next(s for s in from_sql.values() if s["name"] == "invoke_agent tagger")
    keys = dict(odd_span["attributes"])
    assert json.loads(keys["kagura.trace.id"]) == {"stringValue": "custom-trace"}
    assert json.loads(keys["gen_ai.conversation.id"]) == {"stringValue": "s-1"}
    assert rows  # the hand-built runs are part of both


def test_ingest_reports_what_it_rejected(tmp_path):
    good = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "invoke_agent a",
                                "startTimeUnixNano": "1780000000000000000",
                                "endTimeUnixNano": "1780000001000000000",
                            },
                            {"traceId": "", "spanId": "", "name": "no ids"},
                        ]
                    }
                ]
            }
        ]
    }
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\nthis is not json\n", encoding="utf-8")
    target = tmp_path / "t.db"
    result = run_cli("monitor", "ingest", str(path), "--db", str(target))
    assert result.returncode == 1
    assert "Ingested 1 spans from 2 lines; rejected 2" in result.stdout
    assert "line 2: not JSON" in result.stderr and "Traceback" not in result.stderr
    with EventStore(target) as store:
        assert [r["id"] for r in store.get_executions()] == ["otel_b7ad6b7169203331"]


def test_ingest_keeps_a_span_whose_tags_or_metadata_are_not_json_objects(tmp_path):
    """Another producer's `metadata` that is not one JSON object is dropped, its span kept;
    a secret inside metadata is redacted before it reaches the store."""

    def span(span_id, **attrs):
        return {
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": span_id,
            "name": "invoke_agent a",
            "startTimeUnixNano": "1780000000000000000",
            "endTimeUnixNano": "1780000001000000000",
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
        }

    secret = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    line = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            span("b7ad6b7169203331", metadata="not json", **{"kagura.tags": "[1]"}),
                            span(
                                "b7ad6b7169203332",
                                metadata=json.dumps({"note": f"key {secret}"}),
                                **{"user.id": "u-1", "session.id": "s-1"},
                            ),
                        ]
                    }
                ]
            }
        ]
    }
    path = tmp_path / "foreign.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    target = tmp_path / "t.db"
    result = run_cli("monitor", "ingest", str(path), "--db", str(target))
    assert result.returncode == 0, result.stderr
    with EventStore(target) as store:
        got = {r["id"]: r for r in store.get_executions()}
    first, second = got["otel_b7ad6b7169203331"], got["otel_b7ad6b7169203332"]
    assert (first["tags"], first["metadata"], first["user_id"]) == ({}, {}, None)
    assert (second["user_id"], second["session_id"]) == ("u-1", "s-1")
    assert second["tags"] == {"session_id": "s-1"}
    assert secret not in json.dumps(second["metadata"])
    assert second["metadata"]["note"].startswith("key ")
