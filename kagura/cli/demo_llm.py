"""An OpenAI-compatible server on 127.0.0.1, and the demo's model that answers like a real one.

`LLMServer` serves `POST /v1/chat/completions` from a daemon thread and asks a
function for each reply; `kagura demo` (with `DemoModel`) and the tests (with a
scripted queue of replies) both point litellm's `api_base` at it, so every call
takes the real path (HTTP, usage, tool calls, errors) without a network or a
key. Each demo request says in its `X-Demo-Fate` header how its run should go
(fine, rate limited, a server error, a timeout, an answer that does not parse).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (HTTP status, JSON body, seconds to wait before answering)
Reply = tuple[int, dict[str, Any], float]
# answer(path, headers, request body) -> Reply
Answer = Callable[[str, Message, dict[str, Any]], Reply]

FATES = ("ok", "rate_limit", "server_error", "timeout", "bad_output", "tool_error")
TIMEOUT = 4.0  # the demo agents' litellm timeout; a "timeout" reply waits longer

_TRANSLATIONS = {
    "French": "Bonjour, comment allez-vous ?",
    "Japanese": "こんにちは、お元気ですか？",
    "Spanish": "Hola, ¿cómo estás?",
    "German": "Hallo, wie geht es Ihnen?",
    "Korean": "안녕하세요, 어떻게 지내세요?",
}


def _tokens(text: str) -> int:
    """A rough token count (about four characters a token, as for English)."""
    return max(1, len(text) // 4)


def chat_completion(
    model: str,
    message: dict[str, Any],
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """An OpenAI `chat.completion` body: one choice and its usage."""
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(message: str, kind: str, code: str | int | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    error: dict[str, Any] = {"message": message, "type": kind}
    if code is not None:
        error["code"] = code
    return {"error": error}


class DemoModel:
    """Decides each reply from the request: deterministic content, random but seeded latency."""

    def __init__(self, seed: int = 7, speed: float = 1.0):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.speed = speed

    def latency(self, completion_tokens: int) -> float:
        with self.lock:
            base = self.rng.lognormvariate(-1.2, 0.45)
        return (base + completion_tokens * 0.004) * self.speed

    def answer(self, path: str, headers: Message, request: dict[str, Any]) -> Reply:
        """The reply to one request, as its `X-Demo-Fate` header asks (an `Answer`)."""
        return self.reply(request, headers.get("X-Demo-Fate") or "ok")

    def reply(self, request: dict[str, Any], fate: str) -> Reply:
        """(HTTP status, JSON body, seconds to wait) for one chat completion request."""
        messages = request.get("messages") or []
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        # A real prompt carries a system message and formatting: about 120 tokens more.
        prompt_tokens = _tokens(prompt) + 7 * len(messages) + 120
        tool_rounds = sum(1 for m in messages if m.get("role") == "tool")
        tools = [t["function"]["name"] for t in request.get("tools") or []]
        last_step = not tools or tool_rounds >= min(3, len(tools))
        if fate == "rate_limit" and last_step:
            error = "Rate limit reached for requests per min (RPM): Limit 500, Used 500. Please retry after 20s."
            return 429, error_body(error, "requests", "rate_limit_exceeded"), 0.05
        if fate == "server_error" and last_step:
            error = "The server had an error while processing your request."
            return 500, error_body(error, "server_error"), 0.3
        if fate == "timeout" and last_step:
            return 200, self._text(request, "too late", prompt_tokens), TIMEOUT + 0.5
        if tools and tool_rounds < min(3, len(tools)):
            name = tools[tool_rounds]
            arguments = self._tool_arguments(name, prompt)
            call = {
                "id": f"call_{tool_rounds}_{name}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            body = chat_completion(
                request.get("model", "demo"),
                {"role": "assistant", "content": None, "tool_calls": [call]},
                "tool_calls",
                prompt_tokens,
                18,
            )
            return 200, body, self.latency(18)
        content = self._answer(prompt, fate)
        with self.lock:  # the reply stands for a longer answer: bill like one
            written = _tokens(content) + self.rng.randint(40, 260)
        body = chat_completion(
            request.get("model", "demo"),
            {"role": "assistant", "content": content},
            "stop",
            prompt_tokens,
            written,
        )
        return 200, body, self.latency(written)

    def _tool_arguments(self, name: str, prompt: str) -> dict[str, Any]:
        topic = prompt.split('"')[1] if prompt.count('"') >= 2 else prompt[:60]
        if name == "web_search":
            return {"query": topic}
        if name == "fetch_url":
            return {"url": "https://example.org/" + "-".join(topic.lower().split()[:4])}
        return {"text": topic}

    def _answer(self, prompt: str, fate: str) -> str:
        lowered = prompt.lower()
        if "sentiment" in lowered:
            return "Mostly positive, I'd say." if fate == "bad_output" else str(3 + len(prompt) % 3)
        if "translate" in lowered:
            for language, text in _TRANSLATIONS.items():
                if language.lower() in lowered:
                    return text
            return "Bonjour"
        if "summar" in lowered:
            return "In short: the page compares the options, names the trade-offs and recommends the simplest one that meets the requirements."
        if "tool" in lowered or "search" in lowered or "research" in lowered:
            return (
                "Findings: three sources agree on the main point; the newest one adds a caveat about cost. "
                "Recommendation: start small, measure, then scale the part that matters."
            )
        return "Happy to help! Here is a short answer, with one follow-up question so I understand your goal better."

    def _text(self, request: dict[str, Any], content: str, prompt_tokens: int) -> dict[str, Any]:
        return chat_completion(
            request.get("model", "demo"),
            {"role": "assistant", "content": content},
            "stop",
            prompt_tokens,
            _tokens(content),
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answer: Answer

    def log_message(self, *args: Any) -> None:  # the callers print their own summary
        pass

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            request = {}
        status, body, delay = self.answer(self.path, self.headers, request)
        if delay:
            time.sleep(delay)
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer


class LLMServer:
    """`answer` served on 127.0.0.1 (an ephemeral port) from a daemon thread; `url` is the api_base."""

    def __init__(self, answer: Answer):
        handler = type("LLMHandler", (_Handler,), {"answer": staticmethod(answer)})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="kagura-local-llm", daemon=True
        )

    def __enter__(self) -> LLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class DemoServer(LLMServer):
    """The demo model served on 127.0.0.1."""

    def __init__(self, model: DemoModel | None = None):
        super().__init__((model or DemoModel()).answer)
