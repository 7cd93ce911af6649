"""Bad requests to the OTLP receiver: the right status code, nothing stored from a rejected
span, and the server keeps serving."""

from __future__ import annotations

import gzip
import json
import sqlite3
import urllib.error
import urllib.request
import zlib

import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.otel.receiver import Receiver

PROTO = "application/x-protobuf"


@pytest.fixture
def receiver(tmp_path):
    store = EventStore(tmp_path / "recv.db")
    server = Receiver(store, "127.0.0.1", 0).start()
    yield server
    server.stop()
    store.close()


def _post(url, body, content_type=PROTO, encoding=None):
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def _request(spans):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for fields, attributes in spans:
        span = scope.spans.add(**fields)
        for key, value in attributes.items():
            item = span.attributes.add(key=key)
            if isinstance(value, str):
                item.value.string_value = value
            elif isinstance(value, float):
                item.value.double_value = value
            else:
                item.value.int_value = value
    return request


def _span(trace=b"\x01" * 16, span=b"\x02" * 8, parent=b"", name="invoke_agent a", **attrs):
    fields = {
        "trace_id": trace,
        "span_id": span,
        "name": name,
        "start_time_unix_nano": 1_780_000_000_000_000_000,
        "end_time_unix_nano": 1_780_000_001_000_000_000,
    }
    if parent:
        fields["parent_span_id"] = parent
    return fields, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", **attrs}


def _rows(receiver):
    with sqlite3.connect(receiver.store.path) as con:
        return (
            con.execute("SELECT count(*) FROM executions").fetchone()[0],
            con.execute("SELECT count(*) FROM events").fetchone()[0],
        )


def _good(receiver, n=1):
    body = _request([_span(span=bytes([9, 9, 9, 9, 9, 9, 9, n]))]).SerializeToString()
    code, ctype, _ = _post(receiver.url, body)
    assert (code, ctype) == (200, PROTO)


def test_truncated_protobuf_is_400_and_nothing_stored(receiver):
    from google.rpc import status_pb2

    body = _request([_span()]).SerializeToString()
    code, ctype, reply = _post(receiver.url, body[:-7])
    assert code == 400 and ctype == PROTO
    assert status_pb2.Status.FromString(reply).code == 3  # INVALID_ARGUMENT
    assert _rows(receiver) == (0, 0)
    _good(receiver)
    assert _rows(receiver) == (1, 0)


def test_wrong_content_type_is_415(receiver):
    code, _, reply = _post(receiver.url, b"<xml/>", content_type="text/xml")
    assert code == 415 and b"content type" in reply
    code, _, _ = _post(receiver.url, b"{}", content_type="application/json", encoding="br")
    assert code == 415
    assert _rows(receiver) == (0, 0)
    _good(receiver)


def test_bad_json_is_400_in_json(receiver):
    code, ctype, reply = _post(
        receiver.url, b'{"resourceSpans": [', content_type="application/json"
    )
    assert code == 400 and ctype == "application/json"
    assert json.loads(reply)["code"] == 3
    _good(receiver)


def test_gzip_bomb_is_413(receiver):
    # 100 MB of zeros compress to about 100 KB; the receiver stops inflating at 64 MiB.
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    bomb = b"".join(deflater.compress(chunk) for _ in range(100)) + deflater.flush()
    assert len(bomb) < 1_000_000
    code, _, reply = _post(receiver.url, bomb, encoding="gzip")
    assert code == 413 and b"decompression" in reply
    assert _rows(receiver) == (0, 0)
    _good(receiver)


def test_gzip_body_accepted(receiver):
    body = gzip.compress(_request([_span()]).SerializeToString())
    code, _, _ = _post(receiver.url, body, encoding="gzip")
    assert code == 200
    assert _rows(receiver) == (1, 0)


def test_spans_without_ids_and_wrong_types_are_rejected_one_by_one(receiver):
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    good = _span(span=b"\x03" * 8)
    child = _span(span=b"\x04" * 8, parent=b"\x03" * 8, name="chat gpt-4o-mini")
    child[1].update(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 7,
        }
    )
    no_trace = _span(trace=b"", span=b"\x05" * 8)
    no_span = _span(span=b"")
    wrong_type = _span(span=b"\x06" * 8)
    wrong_type[1]["gen_ai.usage.input_tokens"] = "many"
    negative = _span(span=b"\x07" * 8)
    negative[1]["gen_ai.usage.cost.amount"] = -1.0
    body = _request([good, child, no_trace, no_span, wrong_type, negative]).SerializeToString()
    code, _, reply = _post(receiver.url, body)
    assert code == 200
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(reply)
    assert response.partial_success.rejected_spans == 4
    assert "trace id" in response.partial_success.error_message
    assert "gen_ai.usage.input_tokens must be an integer" in response.partial_success.error_message
    with sqlite3.connect(receiver.store.path) as con:
        ids = sorted(r[0] for r in con.execute("SELECT id FROM executions"))
        events = con.execute("SELECT execution_id, name, prompt_tokens FROM events").fetchall()
    assert ids == ["otel_" + "03" * 8]
    assert events == [("otel_" + "03" * 8, "gpt-4o-mini", 7)]
    _good(receiver)


def test_json_partial_success_in_json(receiver):
    payload = {
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
                                "endTimeUnixNano": "1780000000500000000",
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "invoke_agent"},
                                    }
                                ],
                            },
                            {"traceId": "", "spanId": "", "name": "no ids"},
                        ]
                    }
                ]
            }
        ]
    }
    code, ctype, reply = _post(
        receiver.url, json.dumps(payload).encode(), content_type="application/json"
    )
    assert code == 200 and ctype == "application/json"
    assert json.loads(reply)["partialSuccess"]["rejectedSpans"] == "1"
    with sqlite3.connect(receiver.store.path) as con:
        row = con.execute("SELECT id, trace_id, duration FROM executions").fetchone()
    assert row == ("otel_b7ad6b7169203331", "0af7651916cd43dd8448eb211c80319c", 0.5)


def test_body_over_limit_is_413_and_other_paths_404(tmp_path):
    store = EventStore(tmp_path / "small.db")
    server = Receiver(store, "127.0.0.1", 0, max_body=1000).start()
    try:
        code, _, _ = _post(server.url, b"x" * 2000)
        assert code == 413
        code, _, _ = _post(server.url.replace("/v1/traces", "/v1/logs"), b"")
        assert code == 404
        body = _request([_span()]).SerializeToString()
        assert _post(server.url, body)[0] == 200
    finally:
        server.stop()
        store.close()


def test_overload_is_503_with_retry_after(tmp_path):
    store = EventStore(tmp_path / "busy.db")
    server = Receiver(store, "127.0.0.1", 0, max_in_flight=1, queue_wait=0.1).start()
    try:
        assert server.slots.acquire(timeout=1)  # a request in flight holds the only slot
        request = urllib.request.Request(
            server.url,
            data=_request([_span()]).SerializeToString(),
            method="POST",
            headers={"Content-Type": PROTO},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 503 and caught.value.headers["Retry-After"] == "1"
        server.slots.release()
        assert _post(server.url, _request([_span()]).SerializeToString())[0] == 200
    finally:
        server.stop()
        store.close()


def test_the_same_spans_twice_are_one_run(receiver):
    parent = _span(span=b"\x0a" * 8)
    child = _span(span=b"\x0b" * 8, parent=b"\x0a" * 8, name="chat gpt-4o-mini")
    child[1].update(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 2,
        }
    )
    # The child first, alone (the SDK's batch processor sends children before parents).
    assert _post(receiver.url, _request([child]).SerializeToString())[0] == 200
    body = _request([parent, child]).SerializeToString()
    assert _post(receiver.url, body)[0] == 200
    assert _post(receiver.url, body)[0] == 200
    assert _rows(receiver) == (1, 1)
    with sqlite3.connect(receiver.store.path) as con:
        row = con.execute(
            "SELECT total_tokens, llm_calls, unpriced_calls FROM executions"
        ).fetchone()
    assert row == (12, 1, 0)
