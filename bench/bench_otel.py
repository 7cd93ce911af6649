"""OpenTelemetry: the OTLP receiver fed by the OTel SDK's exporter, and export to an OTLP file.

Receiver: `kagura serve --otlp` in its own process; client processes build gen_ai spans
with the real opentelemetry-sdk (agent -> chat, tool: 3 spans per run) before the clock
starts, then send them with the SDK's OTLPSpanExporter (protobuf, 512 spans a request),
each request answered only once its spans are committed. Beside it, on the same spans:
the naive receiver (the same HTTP server and decoding, then one JSON row and one commit
per span into the naive store) and the limit (decode and executemany the raw spans into
one SQLite table, no mapping). The server's own cost is measured again in process from
pre-encoded bodies, and the client's (the SDK encoding spans) alone.
Export: `monitor export --format otlp-json` of a compacted store, beside the naive way
(rows from the naive JSON store, one json.dumps per span in Python) and the limit
(DuckDB writing the same execution and event rows as JSON lines, no mapping).
Run: python bench/bench_otel.py [--runs 20000] [--export-runs 100000 (0: receiver only)] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import common

TMP = common.OUT / "tmp_otel"
BATCH = 512
WARM_RUNS = 10  # runs (3 spans each) sent to a server before the clock starts


# --- spans made by the SDK ----------------------------------------------------------


def sdk_spans(runs: int, seed: int) -> list[Any]:
    """Finished SDK spans of `runs` agent runs (agent, chat, tool each)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"bench-{seed}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    models = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "my-local-model")
    for i in range(runs):
        with tracer.start_as_current_span(
            "invoke_agent support",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": f"agent{i % 7}",
            },
        ):
            with tracer.start_as_current_span(
                f"chat {models[i % 4]}",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": models[i % 4],
                    "gen_ai.usage.input_tokens": 100 + i % 900,
                    "gen_ai.usage.output_tokens": 20 + i % 300,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "execute_tool lookup",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
            ):
                pass
    return list(memory.get_finished_spans())


def _client(url: str, runs: int, seed: int, ready: Any, go: Any, out: Any) -> None:
    """One client process: build spans, wait for the start, export them all, report."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans = sdk_spans(runs, seed)
    exporter = OTLPSpanExporter(endpoint=url, timeout=60)
    ready.release()
    go.wait()
    start = time.perf_counter()
    cpu = time.process_time()
    failed = 0
    for i in range(0, len(spans), BATCH):
        if exporter.export(spans[i : i + BATCH]) is not SpanExportResult.SUCCESS:
            failed += len(spans[i : i + BATCH])
    out.put(
        {
            "spans": len(spans),
            "failed": failed,
            "seconds": time.perf_counter() - start,
            "cpu": time.process_time() - cpu,
        }
    )
    exporter.shutdown()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    url: str, runs: int, clients: int, server_pid: int, warm: bytes | None = None
) -> dict[str, Any]:
    """Send `runs` runs (3 spans each) from `clients` processes; wall time from the common start.

    CPU seconds are counted too (the server's and the clients' while sending): the machine
    is shared, so wall time says as much about the others' load as about this code.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    per = runs // clients
    procs = [
        ctx.Process(target=_client, args=(url, per, seed, ready, go, out))
        for seed in range(clients)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    if warm is not None:  # a long-running server has its imports and price map loaded
        import urllib.request

        request = urllib.request.Request(
            url, data=warm, method="POST", headers={"Content-Type": "application/x-protobuf"}
        )
        urllib.request.urlopen(request, timeout=60).read()
    server_cpu = cpu_seconds(server_pid)
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - start
    server_cpu = cpu_seconds(server_pid) - server_cpu
    for proc in procs:
        proc.join()
    spans = sum(r["spans"] for r in results)
    failed = sum(r["failed"] for r in results)
    client_cpu = sum(r["cpu"] for r in results)
    return {
        "spans": spans,
        "failed": failed,
        "seconds": wall,
        "spans_per_s": spans / wall,
        "server_cpu_us_per_span": server_cpu / spans * 1e6,
        "client_cpu_us_per_span": client_cpu / spans * 1e6,
        # Two idle cores shared by clients and server: spans per second of CPU, times two.
        "idle_2core_estimate_spans_per_s": 2 * spans / (server_cpu + client_cpu),
    }


# --- the three receivers ---------------------------------------------------------------


def serve_kagura(db: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kagura.cli", "serve", "--otlp", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    return proc, re.search(r"(http://\S+/v1/traces)", line).group(1)


class _Plain(BaseHTTPRequestHandler):
    """Decode the protobuf request, hand its spans to `store(spans)`, answer 200."""

    protocol_version = "HTTP/1.1"
    store: Any = None

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        type(self).store(request)
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def _serve_plain(db: Path, kind: str, port_out: Any) -> None:
    """A receiver process: 'naive' (one JSON row and commit per span) or 'limit' (raw executemany)."""
    from google.protobuf.json_format import MessageToDict

    lock = threading.Lock()
    if kind == "naive":
        from naive import _INSERT, NaiveStore

        NaiveStore(db)  # the schema

        def store(request: Any) -> None:
            # The naive store's way: per span, a dict, a JSON blob, a connection and a commit.
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        d = MessageToDict(span)
                        start = span.start_time_unix_nano / 1e9
                        end = span.end_time_unix_nano / 1e9
                        row = (
                            span.span_id.hex(),
                            span.name,
                            start,
                            end,
                            end - start,
                            "completed",
                            None,
                            None,
                            json.dumps(d.get("attributes", [])),
                            "{}",
                        )
                        with lock:
                            conn = sqlite3.connect(db)
                            try:
                                conn.execute(_INSERT, row)
                                conn.commit()
                            finally:
                                conn.close()

    else:
        con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE spans (trace BLOB, span BLOB, parent BLOB, name TEXT, start INTEGER, "
            "end INTEGER, attributes BLOB, PRIMARY KEY (trace, span))"
        )

        def store(request: Any) -> None:
            rows = [
                (
                    s.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.name,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                    b"".join(a.SerializeToString() for a in s.attributes),
                )
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
            ]
            with lock:
                con.execute("BEGIN IMMEDIATE")
                con.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?)", rows)
                con.execute("COMMIT")

    handler = type("Handler", (_Plain,), {"store": staticmethod(store)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


def serve_plain(db: Path, kind: str) -> tuple[Any, str]:
    ctx = multiprocessing.get_context("spawn")
    port = ctx.Queue()
    proc = ctx.Process(target=_serve_plain, args=(db, kind, port), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{port.get(timeout=60)}/v1/traces"


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchone()[0]


def bench_receiver(runs: int, naive_runs: int, clients: int) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs, "spans": 3 * runs, "clients": clients}
    # The client alone: the SDK encoding the spans (what bounds every receiver here).
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = sdk_spans(min(runs, 5000), 99)
    cpu = time.process_time()
    bodies = [
        encode_spans(spans[i : i + BATCH]).SerializeToString() for i in range(0, len(spans), BATCH)
    ]
    out["sdk_encode_spans_per_cpu_s"] = len(spans) / (time.process_time() - cpu)
    # One request of other spans, sent to each server before the clock starts.
    warm = encode_spans(sdk_spans(WARM_RUNS, 98)).SerializeToString()
    # The server alone, in process: decode, map, commit.
    from kagura.observability.eventstore import EventStore
    from kagura.observability.otel import ingest

    db = TMP / "inproc.db"
    store = EventStore(db)
    index = ingest.SpanIndex()
    ingest.rows(ingest.decode_protobuf(bodies[0]))  # loads the price map once, as a server does
    start, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        ingest.write(store, ingest.rows(ingest.decode_protobuf(body), index))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    store.close()
    out["server_in_process_spans_per_s"] = len(spans) / seconds
    out["server_in_process_spans_per_cpu_s"] = len(spans) / cpu

    db = TMP / "kagura.db"
    proc, url = serve_kagura(db)
    try:
        result = drive(url, runs, clients, proc.pid, warm)
    finally:
        proc.terminate()
        proc.wait(30)
    # Counted back in the tail and the lake (a compaction may have moved some meanwhile).
    stored = (
        _count(db, "SELECT count(*) FROM executions")
        + _count(db, "SELECT count(*) FROM events")
        + _count(db, "SELECT coalesce(sum(executions + events), 0) FROM segments")
        - 3 * WARM_RUNS
    )
    out["kagura"] = {**result, "stored_spans": stored}

    db = TMP / "naive.db"
    proc, url = serve_plain(db, "naive")
    try:
        result = drive(url, naive_runs, clients, proc.pid, warm)
    finally:
        proc.terminate()
    out["naive"] = {
        **result,
        "runs": naive_runs,
        "stored_spans": _count(db, "SELECT count(*) FROM executions") - 3 * WARM_RUNS,
    }

    db = TMP / "limit.db"
    proc, url = serve_plain(db, "limit")
    try:
        result = drive(url, runs, clients, proc.pid, warm)
    finally:
        proc.terminate()
    out["limit"] = {
        **result,
        "stored_spans": _count(db, "SELECT count(*) FROM spans") - 3 * WARM_RUNS,
    }
    return out


# --- export -------------------------------------------------------------------------------


def bench_export(runs: int, naive_runs: int) -> dict[str, Any]:
    from kagura.observability.eventstore import EventStore
    from kagura.observability.otel import export

    db = TMP / "export.db"
    store = EventStore(db, auto_compact=False)
    n_events = 0
    naive_pairs = []
    for executions, events in common.arrow_chunks(runs, chunk=50_000):
        pairs = common.pairs_of(executions, events)
        store.append_many(pairs)
        n_events += events.num_rows
        if len(naive_pairs) < naive_runs:
            naive_pairs.extend(pairs[: naive_runs - len(naive_pairs)])
    store.compact()
    out: dict[str, Any] = {"runs": runs, "spans": runs + n_events}
    target = TMP / "export.otlp.jsonl"

    def kagura_export() -> None:
        export.write_path(target, store)

    timing = common.measure(kagura_export, repeat=3)
    out["kagura"] = {**timing, "spans_per_s": out["spans"] / (timing["warm_ms"] / 1000)}
    out["kagura"]["bytes"] = target.stat().st_size
    out["kagura"]["cpu_s"] = _cpu(kagura_export)

    # Naive: rows from the naive JSON store, one span dict and json.dumps per span.
    from naive import NaiveStore, blob_row

    naive_db = TMP / "naive_export.db"
    naive = NaiveStore(naive_db)
    naive.bulk_load([blob_row(row, events) for row, events in naive_pairs])
    naive_spans = len(naive_pairs) + sum(len(e) for _, e in naive_pairs)

    def naive_export() -> None:
        with open(TMP / "naive.jsonl", "w") as handle:
            for row in naive.get_executions(limit=None):
                spans = [_naive_span(row["id"], row["agent_name"], row["started_at"], row)]
                for i, event in enumerate(row["events"]):
                    spans.append(
                        _naive_span(
                            f"{row['id']}/{i}", event["type"], event["timestamp"], event["data"]
                        )
                    )
                handle.write(
                    json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}) + "\n"
                )

    timing = common.measure(naive_export, repeat=1)
    out["naive"] = {
        **timing,
        "runs": len(naive_pairs),
        "spans": naive_spans,
        "spans_per_s": naive_spans / (timing["warm_ms"] / 1000),
    }

    # Limit: DuckDB writes the same rows as JSON lines, no mapping.
    import duckdb

    segments = store.segments()
    ex_files = [str(store.lake / s.executions_path) for s in segments]
    ev_files = [str(store.lake / s.events_path) for s in segments]
    con = duckdb.connect()

    def limit_export() -> None:
        con.execute(
            f"COPY (SELECT * FROM read_parquet({ex_files!r})) TO '{TMP / 'limit_ex.jsonl'}' (FORMAT json)"
        )
        con.execute(
            f"COPY (SELECT * FROM read_parquet({ev_files!r})) TO '{TMP / 'limit_ev.jsonl'}' (FORMAT json)"
        )

    timing = common.measure(limit_export, repeat=3)
    out["limit"] = {**timing, "spans_per_s": out["spans"] / (timing["warm_ms"] / 1000)}
    out["limit"]["cpu_s"] = _cpu(limit_export)
    store.close()
    return out


def _cpu(fn: Any) -> float:
    """CPU seconds (all threads of this process) of one call."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def _naive_span(span_id: str, name: str, start: float, fields: dict[str, Any]) -> dict[str, Any]:
    attributes = []
    for key, value in (fields or {}).items():
        if isinstance(value, str):
            attributes.append({"key": key, "value": {"stringValue": value}})
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            attributes.append({"key": key, "value": {"intValue": str(value)}})
        elif isinstance(value, float):
            attributes.append({"key": key, "value": {"doubleValue": value}})
    return {
        "spanId": span_id,
        "name": name,
        "startTimeUnixNano": str(int(start * 1e9)),
        "attributes": attributes,
    }


def _receiver_line(label: str, x: dict[str, Any]) -> str:
    return (
        f"  {label:<14} {x['spans_per_s']:>9,.0f} spans/s  server {x['server_cpu_us_per_span']:5.1f} us"
        f" + client {x['client_cpu_us_per_span']:5.1f} us CPU/span"
        f" -> {x['idle_2core_estimate_spans_per_s']:>9,.0f}/s on 2 idle cores  ({x['spans']:,} spans)"
    )


def _table(results: dict[str, Any]) -> str:
    r, e = results["receiver"], results["export"]
    lines = [
        f"receiver ({r['clients']} SDK client processes, 512 spans a request, durable before 200)",
        _receiver_line("kagura serve", r["kagura"]) + f" stored {r['kagura']['stored_spans']:,}",
        _receiver_line("naive", r["naive"]),
        _receiver_line("limit (raw)", r["limit"]) + f" stored {r['limit']['stored_spans']:,}",
        f"  server alone   {r['server_in_process_spans_per_s']:>9,.0f} spans/s"
        f"  ({r['server_in_process_spans_per_cpu_s']:,.0f} per CPU second; in process, pre-encoded)",
        f"  SDK encoding   {r['sdk_encode_spans_per_cpu_s']:>9,.0f} spans per CPU second (the client's own work)",
        f"load average at the end: {os.getloadavg()}",
    ]
    if e is not None:
        lines[-1:-1] = [
            f"export ({e['spans']:,} spans of {e['runs']:,} runs, to a file)",
            f"  kagura         {e['kagura']['spans_per_s']:>10,.0f} spans/s  ({e['kagura']['warm_ms']:.0f} ms,"
            f" {e['kagura']['cpu_s']:.2f} CPU s, {e['kagura']['bytes'] / e['spans']:.0f} bytes/span)",
            f"  naive          {e['naive']['spans_per_s']:>10,.0f} spans/s  ({e['naive']['spans']:,} spans)",
            f"  limit (raw)    {e['limit']['spans_per_s']:>10,.0f} spans/s  ({e['limit']['warm_ms']:.0f} ms,"
            f" {e['limit']['cpu_s']:.2f} CPU s)",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--runs", type=int, default=20_000, help="receiver: agent runs (3 spans each)"
    )
    parser.add_argument("--naive-runs", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--export-runs", type=int, default=100_000)
    parser.add_argument("--naive-export-runs", type=int, default=20_000)
    args = parser.parse_args()
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    results = {
        "machine": common.machine(),
        "load_before": os.getloadavg(),
        "receiver": bench_receiver(args.runs, args.naive_runs, args.clients),
        "export": bench_export(args.export_runs, args.naive_export_runs)
        if args.export_runs
        else None,
    }
    (common.OUT / "otel.json").write_text(json.dumps(results, indent=2))
    print(_table(results))
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
