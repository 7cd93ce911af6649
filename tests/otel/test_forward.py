"""Live forwarding and `export --endpoint`: real local HTTP endpoints as targets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

from otel_parts import Recorder, attrs, cli_json, run_cli
from store_rows import run

from kagura.observability.eventstore import EventStore
from kagura.observability.otel import forward

T0 = 1_780_000_000.0

APP = textwrap.dedent(
    """
    import asyncio, sys
    from kagura.observability import EventStore, TelemetryCollector

    async def main():
        collector = TelemetryCollector(EventStore(sys.argv[1]))
        for i in range(3):
            async with collector.track_execution("forwarded", question=i):
                collector.record_llm_call("gpt-4o-mini", 100, 20, 0.2, cost=0.01)
                collector.record_tool_call("search", 0.05)

    asyncio.run(main())
    """
)


def _run_app(db, endpoint_env: dict[str, str]):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    env.pop("KAGURA_OTLP_ENDPOINT", None)
    env.update(endpoint_env)
    return subprocess.run(
        [sys.executable, "-c", APP, str(db)], capture_output=True, text=True, env=env, timeout=120
    )


def test_finished_runs_are_forwarded_with_retries(tmp_path):
    endpoint = Recorder(fail_first=2, status=503)
    try:
        db = tmp_path / "app.db"
        result = _run_app(db, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint.url})
        assert result.returncode == 0, result.stderr
        spans = endpoint.spans()
        assert endpoint.answers[:2] == [503, 503] and endpoint.answers[-1] == 200
    finally:
        endpoint.close()
    names = sorted(s.name for s in spans)
    assert (
        names
        == ["chat gpt-4o-mini"] * 3 + ["execute_tool search"] * 3 + ["invoke_agent forwarded"] * 3
    )
    chat = attrs(next(s for s in spans if s.name.startswith("chat")))
    assert chat["gen_ai.usage.input_tokens"] == 100 and chat["gen_ai.usage.cost.amount"] == 0.01
    with EventStore(db) as store:
        assert len(store.get_executions(agent_name="forwarded")) == 3
    status = forward.read_status(db)
    assert status["sent"] == 9 and status["unsent"] == 0


def test_a_dead_collector_never_loses_the_local_copy_and_doctor_counts_it(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "app.db"
    result = _run_app(
        db,
        {"KAGURA_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
    )
    assert result.returncode == 0, result.stderr
    with EventStore(db) as store:
        assert len(store.get_executions(agent_name="forwarded")) == 3
    status = forward.read_status(db)
    assert status is not None and status["sent"] == 0 and status["unsent"] > 0
    assert os.stat(forward.status_path(db)).st_mode & 0o077 == 0
    report = cli_json("monitor", "doctor", "--db", str(db))
    assert report["forwarding"]["unsent"] == status["unsent"]
    assert any("could not be forwarded" in w for w in report["warnings"])
    text = run_cli("monitor", "doctor", "--db", str(db))
    assert "OTLP forwarding to" in text.stdout and "unsent" in text.stdout


def test_forwarder_batches_and_counts(tmp_path):
    store = EventStore(tmp_path / "f.db")
    endpoint = Recorder()
    try:
        forwarder = forward.Forwarder(endpoint.url + "/v1/traces", batch_spans=4, linger=0.05)
        pairs = [run("a", T0 + i, costs=(0.001,), tools=1) for i in range(5)]
        running, _ = run("b", T0 + 9, status="running", costs=())
        forwarder.offer(store, [*pairs, (running, [])])
        assert forwarder.flush(20)
        assert forwarder.sent == 15 and forwarder.unsent == 0  # 5 runs x 3 spans; running skipped
        assert len(endpoint.bodies) >= 3  # batches of about 4 spans (a run's spans go together)
    finally:
        endpoint.close()
        store.close()


def test_export_endpoint_pushes_protobuf(tmp_path, recorder):
    db = tmp_path / "push.db"
    store = EventStore(db)
    store.append_many([run("pusher", T0 + i, costs=(0.002,)) for i in range(3)])
    store.close()
    result = run_cli("monitor", "export", "--endpoint", recorder.url, "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spans"] == 6
    spans = recorder.spans()
    assert sorted(s.name for s in spans) == ["chat gpt-4o-mini"] * 3 + ["invoke_agent pusher"] * 3


def test_export_endpoint_down_is_one_line(tmp_path):
    db = tmp_path / "push.db"
    store = EventStore(db)
    store.append_many([run("pusher", T0)])
    store.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = Recorder(fail_first=100, status=400)
    try:
        result = run_cli("monitor", "export", "--endpoint", endpoint.url, "--db", str(db))
        assert result.returncode == 1 and "400" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        endpoint.close()
    del port


def test_endpoint_from_env():
    assert forward.endpoint_from_env({}) is None
    assert (
        forward.endpoint_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318/"})
        == "http://h:4318/v1/traces"
    )
    assert (
        forward.endpoint_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h/x"})
        == "http://h/x"
    )
    assert (
        forward.endpoint_from_env(
            {"KAGURA_OTLP_ENDPOINT": "http://k:1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://o:2"}
        )
        == "http://k:1/v1/traces"
    )
    assert forward.headers_from_env({"OTEL_EXPORTER_OTLP_HEADERS": "a=1, b=x%20y"}) == {
        "a": "1",
        "b": "x y",
    }
