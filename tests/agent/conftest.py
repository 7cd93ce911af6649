"""A scripted OpenAI-compatible server on 127.0.0.1, so agents run the real litellm HTTP path.

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
import time  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Callable  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

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

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(request)
            reply = self.replies.popleft() if self.replies else self.default
        return reply(request) if callable(reply) else reply

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeLLM

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = json.loads(body or b"{}")
        request["_path"] = self.path
        request["_authorization"] = self.headers.get("Authorization")
        reply = self.fake.next_reply(request)
        if reply.get("delay"):
            time.sleep(reply["delay"])
        if "status" in reply:
            payload = {
                "error": {
                    "message": reply["error"],
                    "type": "server_error",
                    "code": reply["status"],
                }
            }
            self._send(reply["status"], payload)
            return
        prompt, completion = reply["usage"]
        payload = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "test-model"),
            "choices": [
                {"index": 0, "message": reply["message"], "finish_reason": reply["finish_reason"]}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        self._send(200, payload)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


@pytest.fixture(scope="session")
def llm_server():
    """One local server for the whole session."""
    fake = FakeLLM()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()


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
