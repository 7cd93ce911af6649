"""An app instrumented with the real OpenTelemetry SDK and OTLP/HTTP exporter sends gen_ai and
OpenInference spans to `kagura serve`; the store then answers list, trace and cost."""

from __future__ import annotations

import sqlite3

import pytest
from otel_parts import cli_json, litellm_price

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")


def _send_app_traces(url: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(resource=Resource.create({"service.name": "support-app"}))
    exporter = OTLPSpanExporter(endpoint=url, timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("app")
    agent_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={**agent_attrs, "gen_ai.conversation.id": "conv-1"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool lookup",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
        ):
            pass
    # A failing agent whose model has no known price, with the deprecated attribute names.
    with pytest.raises(ValueError):
        with tracer.start_as_current_span(
            "invoke_agent billing",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "billing"},
        ) as span:
            with tracer.start_as_current_span(
                "chat my-local-model",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "acme",
                    "gen_ai.request.model": "my-local-model",
                    "gen_ai.usage.prompt_tokens": 50,
                    "gen_ai.usage.completion_tokens": 5,
                },
            ):
                pass
            span.set_attribute("error.type", "ValueError")
            raise ValueError("card declined")
    # An OpenInference trace (as LangChain instrumentation writes it): a root chain, an LLM
    # span that carries its own cost, and a plain HTTP span under the chain.
    with tracer.start_as_current_span(
        "RunnableSequence", attributes={"openinference.span.kind": "CHAIN"}
    ):
        with tracer.start_as_current_span(
            "ChatOpenAI",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o",
                "llm.provider": "openai",
                "llm.token_count.prompt": 10,
                "llm.token_count.completion": 4,
                "llm.token_count.total": 14,
                "llm.cost.total": 0.0042,
                "session.id": "s-9",
            },
        ):
            pass
        with tracer.start_as_current_span("GET /weather", attributes={"http.method": "GET"}):
            pass
    assert provider.force_flush(10_000)
    provider.shutdown()


def test_sdk_exporter_to_kagura_serve(served):
    _send_app_traces(served.url)

    # Acknowledged means durable: the rows are in SQLite while the server still runs.
    with sqlite3.connect(served.db) as con:
        names = sorted(r[0] for r in con.execute("SELECT agent_name FROM executions"))
        n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert names == ["RunnableSequence", "billing", "support"]
    assert n_events == 5  # chat, tool, chat, LLM, GET

    runs = {r["agent_name"]: r for r in cli_json("monitor", "list", "--db", str(served.db))}
    input_price, output_price = litellm_price("gpt-4o-mini")
    support = runs["support"]
    assert support["status"] == "completed"
    assert support["metrics"]["total_tokens"] == 120
    assert support["metrics"]["llm_calls"] == 1
    assert support["metrics"]["tool_calls"] == 1
    assert support["metrics"]["total_cost"] == pytest.approx(100 * input_price + 20 * output_price)
    assert support["tags"] == {"session_id": "conv-1"}
    assert support["session_id"] == "conv-1"  # the conversation id is the run's session

    billing = runs["billing"]
    assert billing["status"] == "failed"
    assert billing["error_type"] == "ValueError"
    assert "card declined" in billing["error"]
    assert billing["metrics"]["total_tokens"] == 55
    assert billing["metrics"]["unpriced_calls"] == 1  # unknown price: unknown, not $0
    assert billing["metrics"]["cost_complete"] is False

    chain = runs["RunnableSequence"]
    assert chain["metrics"]["total_cost"] == pytest.approx(0.0042)
    assert chain["metrics"]["total_tokens"] == 14

    trace = cli_json("monitor", "trace", support["id"], "--db", str(served.db))
    events = trace["events"]
    assert [(e["type"], e["name"]) for e in events] == [
        ("llm_call", "gpt-4o-mini"),
        ("tool_call", "lookup"),
    ]
    assert events[0]["prompt_tokens"] == 100 and events[0]["completion_tokens"] == 20

    chain_trace = cli_json("monitor", "trace", chain["id"], "--db", str(served.db))
    chain_events = chain_trace["events"]
    assert [(e["type"], e["name"]) for e in chain_events] == [
        ("llm_call", "gpt-4o"),
        ("custom", "GET /weather"),
    ]

    cost = {r["agent_name"]: r for r in cli_json("monitor", "cost", "--db", str(served.db))["rows"]}
    assert cost["support"]["cost"] == pytest.approx(100 * input_price + 20 * output_price)
    assert cost["support"]["tokens"] == 120
    assert cost["billing"]["unpriced_calls"] == 1 and cost["billing"]["failed"] == 1
    assert cost["RunnableSequence"]["cost"] == pytest.approx(0.0042)

    # SIGTERM stops the server cleanly (exit code 0), as a service manager sends it.
    served.proc.terminate()
    assert served.proc.wait(timeout=30) == 0
