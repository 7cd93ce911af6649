"""@agent itself: prompts, return types, memory, configuration errors (mostly via mock_response)."""

from __future__ import annotations

import asyncio
from typing import Literal, Optional

import pytest
from pydantic import BaseModel

from kagura import agent
from kagura.agent import AgentError, AgentOutputError, ConversationMemory
from kagura.observability import EventStore
from kagura.observability.recording.collector import flush


class Person(BaseModel):
    name: str
    age: int


def recorded() -> EventStore:
    """The default store, once every run recorded so far is written."""
    flush()
    return EventStore()


def run_of(name: str) -> dict:
    store = recorded()
    [row] = store.get_executions(agent_name=name)
    return store.get_execution(row["id"])


def test_template_renders_with_bound_arguments_and_defaults(llm):
    @agent(model="openai/m", **llm.kwargs())
    async def greet(name: str, times: int = 2, *, style: str = "warm") -> str:
        """Greet {{ name }} {{ times }} times, {{ style }}.{% if times > 1 %} Really.{% endif %}"""

    asyncio.run(greet("Ann", style="formal"))
    assert llm.requests[0]["messages"][0]["content"] == "Greet Ann 2 times, formal. Really."
    assert run_of("greet")["kwargs"] == {"name": "Ann", "times": 2, "style": "formal"}


@pytest.mark.parametrize(
    ("annotation", "reply", "expected"),
    [
        (str, "  as is  ", "  as is  "),
        (int, "42", 42),
        (int, "The answer is 1,024.", 1024),
        (float, "3.5", 3.5),
        (bool, "Yes.", True),
        (bool, "false", False),
        (list[int], "```json\n[1, 2, 3]\n```", [1, 2, 3]),
        (dict[str, int], 'Here you go: {"a": 1, "b": 2} -- enjoy', {"a": 1, "b": 2}),
        (Person, '```\n{"name": "Ann", "age": 31}\n```', Person(name="Ann", age=31)),
        (list[Person], '[{"name": "Bo", "age": "7"}]', [Person(name="Bo", age=7)]),
        (Literal["yes", "no"], "no", "no"),
        (Literal["yes", "no"], '"yes"', "yes"),
        (Optional[str], "plain text", "plain text"),  # noqa: UP045 (the Optional spelling on purpose)
    ],
)
def test_reply_is_returned_as_the_annotation_asks(annotation, reply, expected):
    async def answer(q: str):
        """{{ q }}"""

    answer.__annotations__["return"] = annotation
    wrapped = agent(model="gpt-4o-mini", mock_response=reply)(answer)
    result = asyncio.run(wrapped("q"))
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "reply"),
    [
        (int, "many"),
        (int, "1 or 2"),
        (bool, "perhaps"),
        (Person, '{"name": "Ann"}'),
        (list[int], "none"),
    ],
)
def test_unparseable_reply_names_the_agent_and_is_recorded(annotation, reply):
    async def picky(q: str):
        """{{ q }}"""

    picky.__annotations__["return"] = annotation
    wrapped = agent(model="gpt-4o-mini", mock_response=reply)(picky)
    with pytest.raises(AgentOutputError, match="agent 'picky' must return") as caught:
        asyncio.run(wrapped("q"))
    assert repr(reply) in str(caught.value)
    run = run_of("picky")
    assert run["status"] == "failed"
    assert run["error_type"] == "AgentOutputError"
    # The LLM call happened and was paid for, even though its reply was unusable.
    assert run["metrics"]["llm_calls"] == 1
    assert run["metrics"]["total_cost"] > 0


def test_structured_return_asks_for_json(llm):
    llm.push(llm.text('{"name": "Ann", "age": 3}'))

    @agent(model="openai/m", **llm.kwargs())
    async def who(q: str) -> Person:
        """{{ q }}"""

    assert asyncio.run(who("x")) == Person(name="Ann", age=3)
    prompt = llm.requests[0]["messages"][0]["content"]
    assert prompt.startswith("x\n\nAnswer with only JSON matching this JSON Schema:")
    assert '"age"' in prompt


def test_memory_keeps_the_conversation_and_records_its_operations(llm):
    llm.push(llm.text("Nice to meet you, Ann."), llm.text("Your name is Ann."))

    @agent(model="openai/m", memory=True, **llm.kwargs())
    async def chatbot(message: str) -> str:
        """{{ message }}"""

    asyncio.run(chatbot("I am Ann."))
    asyncio.run(chatbot("What is my name?"))
    assert llm.requests[1]["messages"] == [
        {"role": "user", "content": "I am Ann."},
        {"role": "assistant", "content": "Nice to meet you, Ann."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert len(chatbot.memory) == 4

    store = recorded()
    first, second = sorted(
        store.get_executions(agent_name="chatbot"), key=lambda e: e["started_at"]
    )
    events = store.get_execution(second["id"])["events"]
    assert [(e["type"], e["name"]) for e in events] == [
        ("memory_operation", "load"),
        ("llm_call", "openai/m"),
        ("memory_operation", "store"),
    ]
    assert events[0]["data"]["messages"] == 2
    assert store.get_execution(first["id"])["events"][0]["data"]["messages"] == 0

    chatbot.memory.clear()
    assert chatbot.memory.messages == []


def test_memory_keeps_only_the_last_messages():
    memory = ConversationMemory(max_messages=4)
    for i in range(3):
        memory.store(
            [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        )
    assert [m["content"] for m in memory.load()] == ["q1", "a1", "q2", "a2"]


def test_agents_without_memory_share_nothing(llm):
    @agent(model="openai/m", **llm.kwargs())
    async def forgetful(message: str) -> str:
        """{{ message }}"""

    asyncio.run(forgetful("one"))
    asyncio.run(forgetful("two"))
    assert llm.requests[1]["messages"] == [{"role": "user", "content": "two"}]
    assert forgetful.memory is None


def test_name_and_bare_decorator():
    @agent(name="renamed", mock_response="hi")
    async def original(q: str) -> str:
        """{{ q }}"""

    @agent
    async def bare(q: str) -> str:
        """{{ q }}"""

    assert asyncio.run(original("x")) == "hi"
    assert run_of("renamed")["model"] == "gpt-4o-mini"
    assert bare.agent.model == "gpt-4o-mini"
    assert original.__name__ == "original"


def test_configuration_errors_are_clear():
    with pytest.raises(TypeError, match="needs an async function"):

        @agent(model="gpt-4o-mini")
        def sync_fn(q: str) -> str:
            """{{ q }}"""

    with pytest.raises(AgentError, match="has no docstring"):

        @agent(model="gpt-4o-mini")
        async def silent(q: str) -> str:
            pass

    @agent(model="gpt-4o-mini", mock_response="x")
    async def broken(q: str) -> str:
        """{{ q }"""

    with pytest.raises(AgentError, match="not a valid Jinja2 template"):
        asyncio.run(broken("q"))

    @agent(model="gpt-4o-mini", mock_response="x")
    async def typo(q: str) -> str:
        """{{ question }}"""

    with pytest.raises(AgentError, match="'question' is undefined"):
        asyncio.run(typo("q"))

    @agent(model="gpt-4o-mini", mock_response="x")
    async def strict(q: str) -> str:
        """{{ q }}"""

    with pytest.raises(TypeError):
        asyncio.run(strict())


def test_api_key_is_never_stored(llm):
    @agent(model="openai/m", **llm.kwargs(api_key="sk-proj-SECRETSECRETSECRET1234"))
    async def keyed(q: str, token: str = "abc") -> str:
        """{{ q }}"""

    asyncio.run(keyed("hello sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV"))
    db = recorded().path.read_bytes()
    assert b"SECRETSECRETSECRET" not in db
    assert b"ABCDEFGHIJKLMNOPQRSTUV" not in db
    run = run_of("keyed")
    assert run["kwargs"] == {"q": "hello [REDACTED]", "token": "[REDACTED]"}
    # The model still got the real prompt.
    assert llm.requests[0]["messages"][0]["content"] == "hello sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV"


def test_huge_arguments_are_cut_down(llm):
    @agent(model="openai/m", **llm.kwargs())
    async def reader(document: str) -> str:
        """Summarize: {{ document[:20] }}"""

    asyncio.run(reader("x" * 10_000_000))
    stored = run_of("reader")["kwargs"]["document"]
    assert len(stored) < 70 * 1024
    assert stored.endswith(f"...[truncated {10_000_000 - 64 * 1024} chars]")
