"""Content capture, opt-in: prompts, replies, tool results and the return value, redacted and capped.

The agent runs the real litellm HTTP path against the local server (conftest);
the store is the real SQLite tail and Parquet lake, read back raw to prove that
secrets never reach disk.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from cli_process import run_cli

from kagura import agent, tool
from kagura.observability import EventStore
from kagura.observability.recording.collector import flush

MODEL = "openai/content-model"
SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city}: 21C; internal key {SECRET}"


def stored_bytes(home) -> bytes:
    """Every byte of the store's files (SQLite file, WAL, Parquet)."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def only_run(name: str) -> dict:
    flush()
    store = EventStore()
    [row] = store.get_executions(agent_name=name)
    return store.get_execution(row["id"])


def test_nothing_is_captured_by_default(llm, monkeypatch):
    monkeypatch.delenv("KAGURA_CAPTURE_CONTENT", raising=False)
    llm.push(llm.text("the answer"))

    @agent(model=MODEL, **llm.kwargs())
    async def plain(question: str) -> str:
        """Answer: {{ question }}"""

    asyncio.run(plain("why?"))
    run = only_run("plain")
    assert not any(
        key in e["data"] for e in run["events"] for key in ("prompt", "reply", "result", "content")
    )
    assert [e["type"] for e in run["events"]] == ["llm_call"]


def test_prompt_reply_tool_result_and_return_value_are_kept_redacted(llm, kagura_home):
    llm.push(llm.tool_calls(("lookup", {"city": "Paris"})), llm.text("Paris is 21C"))

    @agent(model=MODEL, tools=[lookup], capture_content=True, **llm.kwargs())
    async def weather(question: str, api_key: str) -> str:
        """Weather question: {{ question }} (use key {{ api_key }})"""

    assert asyncio.run(weather("Paris?", SECRET)) == "Paris is 21C"
    run = only_run("weather")
    first, tool_event, second, output = run["events"]
    prompt = json.loads(first["data"]["prompt"])
    assert prompt[-1]["role"] == "user" and "Weather question: Paris?" in prompt[-1]["content"]
    assert "[REDACTED]" in prompt[-1]["content"] and SECRET not in first["data"]["prompt"]
    assert json.loads(first["data"]["reply"])["tool_calls"][0]["name"] == "lookup"
    assert tool_event["data"]["result"] == "Paris: 21C; internal key [REDACTED]"
    assert second["data"]["reply"] == "Paris is 21C"
    assert output["type"] == "output" and output["data"]["content"] == "Paris is 21C"

    store = EventStore()
    store.compact()  # and in the lake too
    assert store.segments()
    store.close()
    assert SECRET.encode() not in stored_bytes(kagura_home)
    assert b"Paris is 21C" in stored_bytes(kagura_home)


def test_the_environment_turns_it_on_and_an_agent_can_turn_it_off(llm, monkeypatch):
    monkeypatch.setenv("KAGURA_CAPTURE_CONTENT", "1")
    llm.push(llm.text("yes"), llm.text("no"))

    @agent(model=MODEL, **llm.kwargs())
    async def on(q: str) -> str:
        """{{ q }}"""

    @agent(model=MODEL, capture_content=False, **llm.kwargs())
    async def off(q: str) -> str:
        """{{ q }}"""

    asyncio.run(on("a"))
    asyncio.run(off("b"))
    assert only_run("on")["events"][0]["data"]["reply"] == "yes"
    assert "reply" not in only_run("off")["events"][0]["data"]


def test_a_long_reply_is_cut_to_the_cap_and_says_so(llm, monkeypatch):
    monkeypatch.setenv("KAGURA_CAPTURE_MAX_BYTES", "1000")
    long_reply = "é" * 3000  # 6,000 bytes of UTF-8
    llm.push(llm.text(long_reply))

    @agent(model=MODEL, capture_content=True, **llm.kwargs())
    async def verbose(q: str) -> str:
        """{{ q }}"""

    assert asyncio.run(verbose("talk")) == long_reply  # the caller gets it whole
    run = only_run("verbose")
    reply = run["events"][0]["data"]["reply"]
    assert reply == "é" * 500 + "…[content cut: 6,000 bytes, first 1,000 kept]"
    trace = run_cli("monitor", "trace", run["id"])
    assert trace.returncode == 0
    assert "reply: éééé" in trace.stdout
    assert max(len(line) for line in trace.stdout.splitlines()) <= 200  # shortened in the text view
    whole = json.loads(run_cli("monitor", "trace", run["id"], "--json").stdout)
    assert whole["events"][0]["data"]["reply"] == reply


@pytest.mark.parametrize("value", ["1", "true", "on", "yes"])
def test_env_values_that_turn_it_on(value, monkeypatch):
    from kagura.observability.recording import content

    monkeypatch.setenv("KAGURA_CAPTURE_CONTENT", value)
    assert content.enabled() and not content.enabled(False)
    monkeypatch.setenv("KAGURA_CAPTURE_CONTENT", "0")
    assert not content.enabled() and content.enabled(True)
