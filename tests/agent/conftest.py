"""The package's local LLM server (kagura.cli.demo_llm) with a script, so agents run the real
litellm HTTP path.

Tests queue replies (`llm.push(llm.text(...), llm.tool_calls(...), llm.error(500))`); each
POST to /v1/chat/completions takes the next one (or the default) and is kept in
`llm.requests` so tests can read what the agent sent.
"""

from __future__ import annotations

import os

# Before anything imports litellm: its bundled price map, never the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json  # noqa: E402
import threading  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Callable  # noqa: E402
from email.message import Message  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from kagura.cli.demo_llm import LLMServer, chat_completion, error_body  # noqa: E402
from kagura.observability.recording import collector  # noqa: E402

Reply = dict[str, Any]


def text(
    content: str, prompt_tokens: int = 12, completion_tokens: int = 5, finish_reason: str = "stop"
) -> Reply:
    """A plain assistant reply with its usage."""
    return {
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish_reason,
        "usage": (prompt_tokens, completion_tokens),
    }


def tool_calls(
    *calls: tuple[str, dict[str, Any]], prompt_tokens: int = 20, completion_tokens: int = 8
) -> Reply:
    """An assistant reply asking for tool calls: (tool name, arguments) pairs."""
    return {
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{i}_{name}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for i, (name, args) in enumerate(calls)
            ],
        },
        "finish_reason": "tool_calls",
        "usage": (prompt_tokens, completion_tokens),
    }


def error(status: int, message: str = "server trouble") -> Reply:
    """An HTTP error reply with an OpenAI-style error body."""
    return {"status": status, "error": message}


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """A reply sent only after `seconds`."""
    return {"delay": seconds, **(then or text("late"))}


class FakeLLM:
    """The script and the record of one test's requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default: Reply | Callable[[dict[str, Any]], Reply] = text("ok")
        self.url = ""

    def push(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        """Queue replies, served in order."""
        with self.lock:
            self.replies.extend(replies)

    def answer(
        self, path: str, headers: Message, request: dict[str, Any]
    ) -> tuple[int, dict[str, Any], float]:
        """The next scripted reply (the server's `Answer`); the request is kept with its path
        and Authorization header."""
        request["_path"] = path
        request["_authorization"] = headers.get("Authorization")
        with self.lock:
            self.requests.append(request)
            reply = self.replies.popleft() if self.replies else self.default
        if callable(reply):
            reply = reply(request)
        delay = reply.get("delay") or 0.0
        if "status" in reply:
            return (
                reply["status"],
                error_body(reply["error"], "server_error", reply["status"]),
                delay,
            )
        body = chat_completion(
            request.get("model", "test-model"),
            reply["message"],
            reply["finish_reason"],
            *reply["usage"],
        )
        return 200, body, delay

    def reset(self) -> None:
        with self.lock:
            self.replies.clear()
            self.requests.clear()
            self.default = text("ok")

    # the reply makers, reachable from the fixture
    text = staticmethod(text)
    tool_calls = staticmethod(tool_calls)
    error = staticmethod(error)
    slow = staticmethod(slow)

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """litellm keyword arguments that reach this server quickly and without retries."""
        return {
            "api_base": self.url,
            "api_key": "sk-test-key-not-real-0000000000",
            "num_retries": 0,
            "timeout": 10,
            **extra,
        }


@pytest.fixture(scope="session")
def llm_server():
    """One local server for the whole session."""
    fake = FakeLLM()
    with LLMServer(fake.answer) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def llm(llm_server):
    """The local server, with an empty script for this test."""
    llm_server.reset()
    yield llm_server
    llm_server.reset()


@pytest.fixture(autouse=True)
def fresh_telemetry():
    """Agents record through a fresh global telemetry (default store at this test's KAGURA_HOME)."""
    collector.set_global_telemetry(None)
    yield
    collector.set_global_telemetry(None)
