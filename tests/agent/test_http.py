"""Agents over the real litellm HTTP path against the local server: replies, usage, errors, timeouts."""

from __future__ import annotations

import asyncio

import litellm
import pytest

from kagura import agent
from kagura.observability import EventStore
from kagura.observability.recording import pricing
from kagura.observability.recording.collector import flush

LOCAL_MODEL = "openai/local-test-model"  # litellm's name for a model on an OpenAI-compatible server


def recorded() -> EventStore:
    """The default store, once every run recorded so far is written."""
    flush()
    return EventStore()


@pytest.fixture(autouse=True)
def no_custom_prices():
    pricing.clear_prices()
    yield
    pricing.clear_prices()


def only_execution(name: str) -> dict:
    """The single execution of agent `name` in the default store, with its events."""
    store = recorded()
    rows = store.get_executions(agent_name=name)
    assert len(rows) == 1, rows
    return store.get_execution(rows[0]["id"])


def test_plain_reply_records_usage_and_unknown_cost(llm):
    llm.push(llm.text("Bonjour", prompt_tokens=31, completion_tokens=4))

    @agent(model=LOCAL_MODEL, **llm.kwargs())
    async def translator(text: str, target_lang: str = "French") -> str:
        """Translate "{{ text }}" to {{ target_lang }}"""

    assert asyncio.run(translator("Hello")) == "Bonjour"

    sent = llm.requests[0]
    assert sent["_path"] == "/v1/chat/completions"
    assert sent["model"] == "local-test-model"
    assert sent["messages"] == [{"role": "user", "content": 'Translate "Hello" to French'}]
    assert sent["_authorization"] == "Bearer sk-test-key-not-real-0000000000"

    run = only_execution("translator")
    assert run["status"] == "completed"
    assert run["kwargs"] == {"text": "Hello", "target_lang": "French"}
    assert run["model"] == LOCAL_MODEL
    assert run["metrics"]["prompt_tokens"] == 31
    assert run["metrics"]["completion_tokens"] == 4
    assert run["metrics"]["total_tokens"] == 35
    assert run["metrics"]["llm_calls"] == 1
    # No price is known for a private model: the stored cost is unknown (NULL), not zero;
    # the public dict sums priced calls only and says the sum is incomplete.
    assert run["metrics"]["unpriced_calls"] == 1
    assert run["metrics"]["cost_complete"] is False
    assert run["metrics"]["total_cost"] == 0.0
    stored = recorded().sql("SELECT total_cost FROM executions WHERE id = $id", id=run["id"]).rows()
    assert stored == [{"total_cost": None}]
    [event] = run["events"]
    assert event["type"] == "llm_call"
    assert event["name"] == LOCAL_MODEL
    assert event["cost"] is None
    assert event["data"]["finish_reason"] == "stop"
    assert 0 <= event["duration"] <= run["duration"]


def test_custom_price_prices_a_private_model(llm):
    pricing.set_price(LOCAL_MODEL, 2e-6, 5e-6)
    llm.push(llm.text("fine", prompt_tokens=1000, completion_tokens=200))

    @agent(model=LOCAL_MODEL, **llm.kwargs())
    async def helper(q: str) -> str:
        """{{ q }}"""

    asyncio.run(helper("hi"))
    run = only_execution("helper")
    # 1000 * 2e-6 + 200 * 5e-6 = 0.002 + 0.001
    assert run["metrics"]["total_cost"] == pytest.approx(0.003)
    assert run["metrics"]["unpriced_calls"] == 0


def test_temperature_max_tokens_and_kwargs_reach_the_server(llm):
    llm.push(llm.text("x"))

    @agent(model=LOCAL_MODEL, temperature=0.25, max_tokens=77, **llm.kwargs(top_p=0.5, seed=7))
    async def tuned(q: str) -> str:
        """{{ q }}"""

    asyncio.run(tuned("hi"))
    sent = llm.requests[0]
    assert sent["temperature"] == 0.25
    assert sent["max_tokens"] == 77
    assert sent["top_p"] == 0.5
    assert sent["seed"] == 7


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [(500, litellm.InternalServerError), (429, litellm.RateLimitError)],
)
def test_http_error_is_recorded_and_reraised(llm, status, exc_type):
    llm.push(llm.error(status, "the server is unhappy"))

    @agent(model=LOCAL_MODEL, **llm.kwargs())
    async def fragile(q: str) -> str:
        """{{ q }}"""

    with pytest.raises(exc_type) as caught:
        asyncio.run(fragile("hi"))

    run = only_execution("fragile")
    assert run["status"] == "failed"
    assert run["error_type"] == type(caught.value).__name__
    assert run["error"] == str(caught.value)
    assert "the server is unhappy" in run["error"]
    [event] = run["events"]
    assert event["type"] == "llm_call"
    assert event["status"] == "failed"
    assert event["error"].startswith(type(caught.value).__name__)
    assert event["prompt_tokens"] is None


def test_slow_reply_past_the_timeout_is_recorded_as_failed(llm):
    llm.push(llm.slow(2.0))

    @agent(model=LOCAL_MODEL, **llm.kwargs(timeout=0.3))
    async def impatient(q: str) -> str:
        """{{ q }}"""

    with pytest.raises(litellm.Timeout):
        asyncio.run(impatient("hi"))

    run = only_execution("impatient")
    assert run["status"] == "failed"
    assert run["error_type"] == "Timeout"
    assert 0.3 <= run["duration"] < 2.0


def test_error_messages_are_scrubbed_of_keys(llm):
    llm.push(llm.error(401, "Incorrect API key provided: sk-live-abcdefghijklmnopqrstuvwxyz0123"))

    @agent(model=LOCAL_MODEL, **llm.kwargs())
    async def leaky(q: str) -> str:
        """{{ q }}"""

    with pytest.raises(litellm.AuthenticationError) as caught:
        asyncio.run(leaky("hi"))
    assert "sk-live-abcdefghijklmnopqrstuvwxyz0123" in str(caught.value)  # the caller sees it all

    run = only_execution("leaky")
    assert "sk-live-abcdefghijklmnopqrstuvwxyz0123" not in run["error"]
    assert "[REDACTED]" in run["error"]
    assert "sk-live-abcdefghijklmnopqrstuvwxyz0123" not in run["events"][0]["error"]
