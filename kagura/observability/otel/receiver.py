"""An OTLP/HTTP trace receiver: `POST /v1/traces` lands other frameworks' spans in a store.

Protobuf (`application/x-protobuf`) and JSON (`application/json`) bodies, gzip
or not, are answered in the request's own content type. A request is answered
200 only once its spans are committed to SQLite; spans that can't be read are
rejected one by one and counted in `partial_success`. Bad payloads get 400,
bodies over 64 MiB (after decompression) 413, and when more requests are in
flight than the store can take the client is told to retry (503, Retry-After).
Built on the standard library's threading HTTP server.
"""

from __future__ import annotations

import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kagura.observability.otel import ingest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BODY = 64 * 1024 * 1024
MAX_IN_FLIGHT = 4  # requests decoded and written at once; more wait, then get 503
QUEUE_WAIT = 5.0  # seconds a request waits for its turn before 503


class Receiver:
    """The OTLP/HTTP server over one store; `serve_forever()` or `start()` in a thread."""

    def __init__(
        self,
        store: Any,
        host: str = "127.0.0.1",
        port: int = 4318,
        *,
        max_body: int = MAX_BODY,
        max_in_flight: int = MAX_IN_FLIGHT,
        queue_wait: float = QUEUE_WAIT,
    ):
        self.store = store
        self.max_body = max_body
        self.queue_wait = queue_wait
        self.index = ingest.SpanIndex()
        self.slots = threading.BoundedSemaphore(max_in_flight)
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._worker: threading.Thread | None = None
        self.stats = {"requests": 0, "spans": 0, "rejected": 0}
        handler = type("Handler", (_Handler,), {"receiver": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{self.port}/v1/traces"

    def serve_forever(self) -> None:
        """Serve until shutdown() (or Ctrl+C in the caller)."""
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> Receiver:
        """Serve from a background thread; return self."""
        self._thread = threading.Thread(target=self.serve_forever, name="kagura-otlp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def handle(self, body: bytes, content_type: str) -> ingest.Batch:
        """Decode, map and durably store one request body (BadData when it can't be read).

        Handler threads only read sockets: one worker thread decodes, maps and commits,
        and requests that wait together are committed in one transaction (no two
        threads fighting over the GIL, one commit for several requests under load).
        """
        job = _Job(body, content_type)
        with self._cond:
            self._jobs.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name="kagura-otlp-writer", daemon=True
                )
                self._worker.start()
            self._cond.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.batch is not None  # set by the worker whenever it set no error
        return job.batch

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                jobs, self._jobs = self._jobs, []
            ready = []
            for job in jobs:
                try:
                    if job.content_type == PROTOBUF:
                        request = ingest.decode_protobuf(job.body)
                    else:
                        request = ingest.decode_json(job.body)
                    job.batch = ingest.rows(request, self.index)
                    ready.append(job)
                except Exception as exc:  # BadData (400) or a bug: that request fails alone
                    job.error = exc
                    job.done.set()
            if not ready:
                continue
            try:
                ingest.write(
                    self.store, ingest.merge([job.batch for job in ready if job.batch is not None])
                )
            except Exception as exc:  # the store can't take them: every request waiting fails
                for job in ready:
                    job.error = exc
            else:
                for job in ready:
                    batch = job.batch
                    assert batch is not None  # every ready job has its batch
                    self.stats["requests"] += 1
                    self.stats["spans"] += batch.spans - batch.rejected
                    self.stats["rejected"] += batch.rejected
            for job in ready:
                job.done.set()


class _Job:
    __slots__ = ("body", "content_type", "done", "batch", "error")

    def __init__(self, body: bytes, content_type: str):
        self.body = body
        self.content_type = content_type
        self.done = threading.Event()
        self.batch: ingest.Batch | None = None
        self.error: Exception | None = None


class _TooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse one connection
    server_version = "kagura-otlp"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # one line per request would drown the terminal

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._status(405, "use POST /v1/traces", JSON)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/traces":
            self._drain()
            self._status(404, f"no such endpoint {path!r}; traces go to POST /v1/traces", JSON)
            return
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        reply_type = content_type if content_type in (PROTOBUF, JSON) else JSON
        if content_type not in (PROTOBUF, JSON):
            self._drain()
            self._status(
                415, f"unsupported content type {content_type!r}; send {PROTOBUF} or {JSON}", JSON
            )
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self.close_connection = True
            self._status(411, "a Content-Length header is required", reply_type)
            return
        length = int(length_text)
        receiver = self.receiver
        if length > receiver.max_body:
            self.close_connection = True  # the body is not read: the connection can't be reused
            self._status(413, f"request body over {receiver.max_body} bytes", reply_type)
            return
        body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = _gunzip(body, receiver.max_body)
            elif encoding not in ("identity", ""):
                self._status(
                    415, f"unsupported content encoding {encoding!r}; use gzip", reply_type
                )
                return
        except _TooLarge:
            self._status(
                413, f"request body over {receiver.max_body} bytes after decompression", reply_type
            )
            return
        except ValueError as exc:
            self._status(400, f"bad gzip body: {exc}", reply_type)
            return
        if not receiver.slots.acquire(timeout=receiver.queue_wait):
            self._status(503, "too many requests in flight; retry later", reply_type, retry_after=1)
            return
        try:
            batch = receiver.handle(body, content_type)
        except ingest.BadData as exc:
            self._status(400, str(exc), reply_type)
            return
        except (
            Exception
        ) as exc:  # a store that can't take the spans: the client keeps them and retries
            sys.stderr.write(f"kagura serve: spans not stored: {type(exc).__name__}: {exc}\n")
            self._status(503, f"spans not stored: {exc}", reply_type, retry_after=2)
            return
        finally:
            receiver.slots.release()
        self._success(batch, reply_type)

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= self.receiver.max_body:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _success(self, batch: ingest.Batch, reply_type: str) -> None:
        if reply_type == PROTOBUF:
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

            response = trace_service_pb2.ExportTraceServiceResponse()
            if batch.rejected:
                response.partial_success.rejected_spans = batch.rejected
                response.partial_success.error_message = batch.error_message()
            body = response.SerializeToString()
        elif batch.rejected:
            body = json.dumps(
                {
                    "partialSuccess": {
                        "rejectedSpans": str(batch.rejected),
                        "errorMessage": batch.error_message(),
                    }
                }
            ).encode()
        else:
            body = b"{}"
        self._send(200, body, reply_type)

    def _status(
        self, code: int, message: str, reply_type: str, retry_after: int | None = None
    ) -> None:
        grpc_code = {400: 3, 404: 5, 411: 3, 413: 8, 415: 3, 503: 14, 405: 12}.get(code, 2)
        if reply_type == PROTOBUF:
            from google.rpc import status_pb2

            body = status_pb2.Status(code=grpc_code, message=message).SerializeToString()
        else:
            body = json.dumps({"code": grpc_code, "message": message}).encode()
        self._send(code, body, reply_type, retry_after)

    def _send(
        self, code: int, body: bytes, reply_type: str, retry_after: int | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", reply_type)
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _gunzip(body: bytes, limit: int) -> bytes:
    """The inflated body; _TooLarge past `limit` bytes (a gzip bomb stops there), ValueError if broken."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    if len(out) > limit:
        raise _TooLarge
    if not inflater.eof:
        raise ValueError("the gzip stream is truncated")
    return out
