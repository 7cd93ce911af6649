"""Parts of the OpenTelemetry tests: the CLI in a subprocess, a running `kagura serve`,
and a plain local OTLP/HTTP endpoint that records what it is sent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cli_process


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """`kagura ARGS...` in a subprocess."""
    return cli_process.run_cli(*args, env=env, timeout=timeout)


def cli_json(*args: str):
    """The parsed --json output of a command that must succeed."""
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Served:
    """A `kagura serve --otlp` process on a free port of 127.0.0.1."""

    def __init__(self, db: Path):
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kagura.cli", "serve", "--otlp", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
        line = self.proc.stdout.readline()
        match = re.search(r"(http://[\d.]+:\d+/v1/traces)", line)
        assert match, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = match.group(1)
        self.base = self.url[: -len("/v1/traces")]

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


class Recorder:
    """A local OTLP/HTTP endpoint: answers the first `fail_first` posts with 503, then 200."""

    def __init__(self, fail_first: int = 0, status: int = 503):
        self.bodies: list[bytes] = []
        self.answers: list[int] = []
        self.fail_first = fail_first
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if len(recorder.answers) < recorder.fail_first:
                    code = status
                else:
                    code = 200
                    recorder.bodies.append(body)
                recorder.answers.append(code)
                self.send_response(code)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                if code != 200:
                    self.send_header("Retry-After", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        """Every span received, parsed with opentelemetry-proto."""
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        out = []
        for body in self.bodies:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    out.extend(ss.spans)
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(span) -> dict:
    """A proto span's attributes as a plain dict."""
    out = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def litellm_price(model: str) -> tuple[float, float]:
    """(input, output) cost per token from litellm's bundled price file, read as plain JSON."""
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    folder = Path(spec.origin).parent
    prices = json.loads((folder / "model_prices_and_context_window_backup.json").read_text())
    entry = prices[model]
    return entry["input_cost_per_token"], entry["output_cost_per_token"]
