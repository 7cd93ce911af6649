"""The tool loop over HTTP: schemas, several turns, a tool's error fed back, bounds, recording."""

from __future__ import annotations

import asyncio
import json

import pytest

from kagura import agent, tool
from kagura.agent import AgentError, Tool
from kagura.observability import EventStore, Telemetry
from kagura.observability.recording.collector import flush

MODEL = "openai/tool-model"


def recorded() -> EventStore:
    """The default store, once every run recorded so far is written."""
    flush()
    return EventStore()


def get_weather(city: str, unit: str = "celsius") -> dict:
    """Current weather of a city.

    Args:
        city: The city name, for example Paris.
        unit: celsius or fahrenheit.
    """
    return {"city": city, "temp": 21 if unit == "celsius" else 70}


@tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(name="divide_numbers")
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def events_of(name: str) -> tuple[dict, list[dict]]:
    store = recorded()
    [row] = store.get_executions(agent_name=name)
    run = store.get_execution(row["id"])
    return run, run["events"]


def test_schema_from_signature_and_docstring():
    schema = Tool(get_weather).schema
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "get_weather"
    assert fn["description"] == "Current weather of a city."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {
        "type": "string",
        "description": "The city name, for example Paris.",
    }
    assert params["properties"]["unit"]["default"] == "celsius"
    assert params["properties"]["unit"]["description"] == "celsius or fahrenheit."
    assert (
        add.__kagura_tool__.schema["function"]["parameters"]["properties"]["a"]["type"] == "integer"
    )
    assert divide.__kagura_tool__.name == "divide_numbers"


def test_tool_stays_callable_on_its_own():
    assert divide(6, 3) == 2
    assert asyncio.run(add(2, 3)) == 5


def test_tool_loop_over_several_turns(llm):
    llm.push(
        llm.tool_calls(("get_weather", {"city": "Paris"}), prompt_tokens=50, completion_tokens=10),
        llm.tool_calls(
            ("add", {"a": 2, "b": 40}),
            ("divide_numbers", {"a": 9, "b": 3}),
            prompt_tokens=80,
            completion_tokens=12,
        ),
        llm.text("Paris is 21C; 42; 3.0", prompt_tokens=120, completion_tokens=9),
    )

    @agent(model=MODEL, tools=[get_weather, add, divide], **llm.kwargs())
    async def assistant(question: str) -> str:
        """Answer: {{ question }}"""

    assert asyncio.run(assistant("weather?")) == "Paris is 21C; 42; 3.0"

    assert len(llm.requests) == 3
    first = llm.requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == [
        "get_weather",
        "add",
        "divide_numbers",
    ]
    # Turn 2 carries the assistant's tool call and the tool's result.
    second = llm.requests[1]["messages"]
    assert second[1]["role"] == "assistant"
    assert second[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert second[2]["role"] == "tool"
    assert second[2]["tool_call_id"] == "call_0_get_weather"
    assert json.loads(second[2]["content"]) == {"city": "Paris", "temp": 21}
    third = llm.requests[2]["messages"]
    assert [m["content"] for m in third if m["role"] == "tool"][1:] == ["42", "3.0"]

    run, events = events_of("assistant")
    assert [(e["type"], e["name"]) for e in events] == [
        ("llm_call", MODEL),
        ("tool_call", "get_weather"),
        ("llm_call", MODEL),
        ("tool_call", "add"),
        ("tool_call", "divide_numbers"),
        ("llm_call", MODEL),
    ]
    assert [e["seq"] for e in events] == list(range(6))
    assert events[0]["data"]["finish_reason"] == "tool_calls"
    assert events[1]["data"]["arguments"] == {"city": "Paris"}
    assert events[1]["status"] == "completed"
    metrics = run["metrics"]
    assert metrics["llm_calls"] == 3
    assert metrics["tool_calls"] == 3
    assert metrics["prompt_tokens"] == 50 + 80 + 120
    assert metrics["completion_tokens"] == 10 + 12 + 9
    # Direct calls of the @tool functions by the loop are recorded once, not twice.
    assert sum(1 for e in events if e["type"] == "tool_call") == 3


def test_a_tools_exception_is_fed_back_to_the_model(llm):
    llm.push(
        llm.tool_calls(("divide_numbers", {"a": 1, "b": 0})), llm.text("cannot divide by zero")
    )

    @agent(model=MODEL, tools=[divide], **llm.kwargs())
    async def calc(q: str) -> str:
        """{{ q }}"""

    assert asyncio.run(calc("1/0")) == "cannot divide by zero"
    tool_message = llm.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"] == "Error: ZeroDivisionError: division by zero"
    run, events = events_of("calc")
    assert run["status"] == "completed"
    tool_event = events[1]
    assert tool_event["status"] == "failed"
    assert tool_event["error"] == "ZeroDivisionError: division by zero"


def test_unknown_tool_and_bad_arguments_are_fed_back(llm):
    llm.push(
        llm.tool_calls(("nope", {})),
        llm.tool_calls(("add", {"a": 1})),
        llm.text("done"),
    )

    @agent(model=MODEL, tools=[add], **llm.kwargs())
    async def confused(q: str) -> str:
        """{{ q }}"""

    assert asyncio.run(confused("x")) == "done"
    assert llm.requests[1]["messages"][-1]["content"].startswith(
        "Error: AgentError: no tool named 'nope'"
    )
    assert "TypeError" in llm.requests[2]["messages"][-1]["content"]


def test_tool_loop_is_bounded(llm):
    llm.default = llm.tool_calls(("add", {"a": 1, "b": 1}))

    @agent(model=MODEL, tools=[add], max_iterations=3, **llm.kwargs())
    async def looping(q: str) -> str:
        """{{ q }}"""

    with pytest.raises(AgentError, match="still asked for tools after 3 calls"):
        asyncio.run(looping("x"))
    assert len(llm.requests) == 3
    run, events = events_of("looping")
    assert run["status"] == "failed"
    assert run["error_type"] == "AgentError"
    assert run["metrics"]["llm_calls"] == 3
    assert run["metrics"]["tool_calls"] == 3


def test_tool_arguments_are_redacted(llm):
    def login(user: str, password: str) -> str:
        """Log in."""
        return "ok"

    llm.push(llm.tool_calls(("login", {"user": "ann", "password": "hunter2"})), llm.text("in"))

    @agent(model=MODEL, tools=[login], **llm.kwargs())
    async def door(q: str) -> str:
        """{{ q }}"""

    asyncio.run(door("open"))
    _, events = events_of("door")
    assert events[1]["data"]["arguments"] == {"user": "ann", "password": "[REDACTED]"}


def test_standalone_tool_call_inside_a_run_is_recorded(tmp_path):
    store = EventStore(tmp_path / "t.db")
    telemetry = Telemetry(store)

    @telemetry.instrument("workflow")
    async def workflow() -> float:
        total = await add(1, 2)
        try:
            divide(1, 0)
        except ZeroDivisionError:
            pass
        return total

    assert asyncio.run(workflow()) == 3
    flush(store)
    [row] = store.get_executions()
    events = store.get_execution(row["id"])["events"]
    assert [(e["name"], e["status"]) for e in events] == [
        ("add", "completed"),
        ("divide_numbers", "failed"),
    ]
    assert events[0]["data"]["arguments"] == {"args": [1, 2]}
    assert events[1]["error"] == "ZeroDivisionError: division by zero"
